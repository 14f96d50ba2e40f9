//! Record builders shared by the integration tests.

use vigil_eval::SampleRecord;

/// Sample `s{id}` in group `g{id / 2}` (pairs share a group, like an endpoint and its twin).
pub fn record(variant: &str, id: usize, label: bool, predicted: bool) -> SampleRecord {
    SampleRecord::new(
        variant,
        &format!("s{id}"),
        &format!("g{}", id / 2),
        label,
        predicted,
    )
}
