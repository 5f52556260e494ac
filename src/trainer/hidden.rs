//! The releases an operator's version hides. An operator's production version is served
//! whatever its backend's text becomes (the operator chose it), so a release that changes that
//! text does not reach clients. The trainer logs it once per version, when the catalog or a
//! prompt's fetches show it, and counts such versions in `mcpgate_versions_hiding_release`;
//! the ops API shows each as `backend_changed`.

use serde_json::Value;

use super::Trainer;
use crate::catalog::input_schema;
use crate::registry::Snapshot;

impl Trainer {
    /// Notes, for each tool whose production version an operator wrote, whether its backend
    /// in `snapshot` changed the tool's description or input schema since.
    pub(super) fn note_hidden_tools(&mut self, snapshot: &Snapshot) {
        for (target, served) in self.deps.served.written_over("tool") {
            let Some(entry) = snapshot.catalog.tool(&target) else {
                continue;
            };
            let tool: &Value = &entry.item;
            let own = tool["description"].as_str().unwrap_or_default();
            let released = served.tool_released_since(own, input_schema(tool));
            let what = "description or input schema";
            self.note_hidden(("tool", &target), served.version, released, what);
        }
        self.count_hidden();
    }

    /// Notes whether the template `learnt` from a fetch of prompt `target` is another than the
    /// one an operator wrote its production version over.
    pub(super) fn note_hidden_prompt(&mut self, target: &str, learnt: &str) {
        let written = self.deps.served.get("prompt", target);
        if let Some(served) = written.filter(|s| s.based_on.is_none()) {
            let released = served.prompt_released_since(learnt);
            self.note_hidden(("prompt", target), served.version, released, "text");
        }
        self.count_hidden();
    }

    /// Forgets the versions no longer in production (rolled back, or replaced by a deploy),
    /// and sets the gauge of those left, by kind.
    fn count_hidden(&mut self) {
        let served = &self.deps.served;
        self.hidden.retain(|(kind, target, version)| {
            served
                .get(kind, target)
                .is_some_and(|s| s.version == *version)
        });
        for kind in ["tool", "prompt"] {
            let hiding = self.hidden.iter().filter(|(k, _, _)| k == kind).count();
            let gauge = self
                .deps
                .metrics
                .versions_hiding_release
                .with_label_values(&[kind]);
            gauge.set(i64::try_from(hiding).unwrap_or(i64::MAX));
        }
    }

    /// Logs, the first time it is seen, that a release changed the backend's `what` since an
    /// operator wrote `version`; forgets it when the backend's text is that one again.
    fn note_hidden(
        &mut self,
        (kind, target): (&str, &str),
        version: i64,
        released: Option<bool>,
        what: &str,
    ) {
        let key = (kind.to_string(), target.to_string(), version);
        if released != Some(true) {
            self.hidden.remove(&key);
        } else if self.hidden.insert(key) {
            log::warn!(
                "{kind} `{target}`: its backend's {what} changed since an operator wrote production \
                 version {version}, which is still served in its place; add a version written \
                 over the new text, or roll production back"
            );
        }
    }
}
