//! Meta's news about a message template: the webhook fields `message_template_status_update`
//! (Meta's reference updated 2026-04-13: `event` APPROVED, REJECTED, DISABLED, PAUSED,
//! ARCHIVED, UNARCHIVED…, with a `reason`) and `template_category_update` (updated
//! 2025-11-11: `previous_category` and `new_category` once changed; `correct_category` and
//! `new_category` when a change is impending). Checked 2026-12-05.
//!
//! The line's template carries every copy outside an agent's 24-hour window: paused or
//! disabled, those copies fail; re-categorised (utility to marketing), they cost more. The
//! operator is told (a metric with an alarm, docs/operating.md).

/// One template's news, as Meta names the template (name and language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEvent {
    pub name: String,
    pub language: String,
    pub change: TemplateChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateChange {
    /// `message_template_status_update`: Meta's `event`, upper case (`PAUSED`…).
    Status { event: String },
    /// `template_category_update`: the category it has now, or will have when `impending`.
    Category { new: String, impending: bool },
}

/// What an event means for a line whose template it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateConcern {
    /// Copies outside an agent's window will fail: paused, disabled, rejected, archived or
    /// being deleted.
    Stopped,
    /// Its category changed, or is about to: those copies may cost more.
    Recategorized,
    /// Usable again: approved, reinstated, unarchived.
    Restored,
    /// Anything else Meta reports (pending review, flagged…): logged, counted.
    Other,
}

impl TemplateConcern {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Recategorized => "recategorized",
            Self::Restored => "restored",
            Self::Other => "other",
        }
    }
}

impl TemplateEvent {
    pub fn concern(&self) -> TemplateConcern {
        match &self.change {
            TemplateChange::Category { .. } => TemplateConcern::Recategorized,
            TemplateChange::Status { event } => match event.as_str() {
                "PAUSED" | "DISABLED" | "REJECTED" | "ARCHIVED" | "PENDING_DELETION" | "DELETED" => {
                    TemplateConcern::Stopped
                }
                "APPROVED" | "REINSTATED" | "UNARCHIVED" => TemplateConcern::Restored,
                _ => TemplateConcern::Other,
            },
        }
    }

    /// Whether it is about `template` (Meta's language codes are compared as written).
    pub fn is_about(&self, template: &super::line::TemplateRef) -> bool {
        self.name == template.name && self.language == template.language
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(event: &str) -> TemplateEvent {
        TemplateEvent {
            name: "new_customer_message".into(),
            language: "en".into(),
            change: TemplateChange::Status { event: event.into() },
        }
    }

    #[test]
    fn what_stops_copies_is_told_apart_from_what_restores_them() {
        for event in ["PAUSED", "DISABLED", "REJECTED", "ARCHIVED", "PENDING_DELETION"] {
            assert_eq!(status(event).concern(), TemplateConcern::Stopped, "{event}");
        }
        for event in ["APPROVED", "REINSTATED", "UNARCHIVED"] {
            assert_eq!(status(event).concern(), TemplateConcern::Restored, "{event}");
        }
        assert_eq!(status("FLAGGED").concern(), TemplateConcern::Other);
        let recategorized = TemplateEvent {
            change: TemplateChange::Category { new: "MARKETING".into(), impending: true },
            ..status("x")
        };
        assert_eq!(recategorized.concern(), TemplateConcern::Recategorized);
    }

    #[test]
    fn an_event_is_about_a_template_by_name_and_language() {
        let ours = super::super::line::TemplateRef { name: "new_customer_message".into(), language: "en".into() };
        assert!(status("PAUSED").is_about(&ours));
        let other_language = TemplateEvent { language: "en_US".into(), ..status("PAUSED") };
        assert!(!other_language.is_about(&ours));
    }
}
