//! Record builders shared by the integration tests.

use vigil_eval::SampleRecord;

pub fn record(variant: &str, id: usize, label: bool, predicted: bool) -> SampleRecord {
    SampleRecord {
        variant: variant.to_string(),
        sample_id: format!("s{id}"),
        group: format!("g{}", id / 2),
        label,
        predicted,
        probability: None,
        threshold: None,
        true_type: None,
        predicted_type: None,
        analysis_tokens: 0,
        generated: None,
        reference: None,
        seconds: 0.0,
    }
}
