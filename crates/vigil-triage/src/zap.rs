//! OWASP ZAP traditional JSON reports (with or without requests and responses):
//! `site[].alerts[].instances[]`, one item per instance; the verdict goes into a `vigil`
//! object on the instance (on the alert when it lists no instances).

use std::path::Path;

use serde_json::Value;

use crate::jsonutil::{self, cwe_from_value, join_message, nth, nth_mut, text};
use crate::{Format, Location, Origin, ReadWarning, TriageError, TriageItem, TriageVerdict};

pub(crate) fn read(
    path: &Path,
    doc: &Value,
) -> Result<(Vec<TriageItem>, Vec<ReadWarning>), TriageError> {
    let sites = match doc.get("site") {
        Some(s @ (Value::Array(_) | Value::Object(_))) => s,
        _ => {
            return Err(TriageError::malformed(
                path,
                "not a ZAP JSON report: no `site` array at the top level",
            ))
        }
    };
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    for si in 0..jsonutil::len(Some(sites)) {
        let Some(site) = nth(sites, si) else { continue };
        let alerts = site.get("alerts");
        for ai in 0..jsonutil::len(alerts) {
            let Some(alert) = alerts.and_then(|a| nth(a, ai)).filter(|a| a.is_object()) else {
                warnings.push(ReadWarning {
                    path: path.to_path_buf(),
                    at: format!("site {si} alert {ai}"),
                    message: "skipped: the alert is not a JSON object".into(),
                });
                continue;
            };
            let instances = alert.get("instances").and_then(Value::as_array);
            match instances {
                Some(list) if !list.is_empty() => {
                    for (ii, instance) in list.iter().enumerate() {
                        items.push(item(si, ai, Some(ii), alert, instance));
                    }
                }
                _ => items.push(item(si, ai, None, alert, &Value::Null)),
            }
        }
    }
    Ok((items, warnings))
}

fn item(si: usize, ai: usize, ii: Option<usize>, alert: &Value, instance: &Value) -> TriageItem {
    let id = match ii {
        Some(ii) => format!("zap:{si}:{ai}:{ii}"),
        None => format!("zap:{si}:{ai}"),
    };
    let mut description = text(alert, "desc")
        .map(|d| jsonutil::strip_html(&d))
        .unwrap_or_default();
    for (key, label) in [("attack", "Attack"), ("otherinfo", "Other information")] {
        if let Some(v) = text(instance, key) {
            description.push_str(&format!("\n\n{label}: {v}"));
        }
    }
    let annotated = if instance.is_object() {
        instance
    } else {
        alert
    };
    let prior = annotated
        .get("vigil")
        .and_then(|v| TriageVerdict::from_json(&id, v));
    TriageItem {
        rule: text(alert, "pluginid").unwrap_or_default(),
        title: text(alert, "alert")
            .or_else(|| text(alert, "name"))
            .unwrap_or_default(),
        description: description.trim().to_string(),
        severity: text(alert, "riskdesc").unwrap_or_default(),
        cwe: alert.get("cweid").and_then(cwe_from_value),
        location: Location::Http {
            method: text(instance, "method").unwrap_or_default(),
            url: text(instance, "uri").unwrap_or_default(),
            param: text(instance, "param"),
        },
        request: join_message(
            text(instance, "request-header"),
            text(instance, "request-body"),
        ),
        response: join_message(
            text(instance, "response-header"),
            text(instance, "response-body"),
        ),
        code: None,
        evidence: text(instance, "evidence"),
        no_evidence: false,
        notes: Vec::new(),
        prior,
        origin: Origin::Zap {
            site: si,
            alert: ai,
            instance: ii,
        },
        id,
        source: Format::Zap,
    }
    .finish()
}

/// Puts `verdict` on the instance (or alert) `origin` points at.
pub(crate) fn annotate(doc: &mut Value, origin: &Origin, verdict: &TriageVerdict) -> bool {
    let Origin::Zap {
        site,
        alert,
        instance,
    } = origin
    else {
        return false;
    };
    let target = doc
        .get_mut("site")
        .and_then(|s| nth_mut(s, *site))
        .and_then(|s| s.get_mut("alerts"))
        .and_then(|a| nth_mut(a, *alert));
    let target = match (target, instance) {
        (Some(a), Some(i)) => a
            .get_mut("instances")
            .and_then(Value::as_array_mut)
            .and_then(|l| l.get_mut(*i)),
        (a, None) => a,
        (None, _) => None,
    };
    match target.and_then(Value::as_object_mut) {
        Some(obj) => {
            obj.insert("vigil".into(), verdict.to_json());
            true
        }
        None => false,
    }
}
