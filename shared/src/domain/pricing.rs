//! What Meta bills for a WhatsApp message, from the `pricing` block of its status reports.
//! Per-message pricing since 2025-07-01. Checked 2026-12-05 against Meta's "Status messages
//! webhook reference" (updated 2026-05-21): `type` is `regular` when billed and
//! `free_customer_service` or `free_entry_point` when free; `category` is `service`,
//! `utility`, `marketing`, `marketing_lite`, `authentication`, `authentication_international`
//! or `referral_conversion`. The bridge counts billed messages by category (docs/operating.md),
//! because every copy, notice and reaction it sends an agent may cost money.

/// Meta's pricing category, folded to what a business reads on its bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricingCategory {
    Service,
    Utility,
    Marketing,
    Authentication,
    Other,
}

impl PricingCategory {
    pub fn parse(category: &str) -> Self {
        match category {
            "service" => Self::Service,
            "utility" => Self::Utility,
            "marketing" | "marketing_lite" => Self::Marketing,
            "authentication" | "authentication_international" => Self::Authentication,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Utility => "utility",
            Self::Marketing => "marketing",
            Self::Authentication => "authentication",
            Self::Other => "other",
        }
    }
}

/// A status report's pricing: whether Meta bills the message, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    pub billable: bool,
    pub category: PricingCategory,
}

impl Pricing {
    /// From the block's fields. Under per-message pricing, `type` decides; a block without a
    /// `type` falls back to its `billable` flag. A block with neither says nothing.
    pub fn from_fields(billable: Option<bool>, category: Option<&str>, kind: Option<&str>) -> Option<Self> {
        let billable = match kind {
            Some(kind) => kind == "regular",
            None => billable?,
        };
        Some(Self { billable, category: category.map_or(PricingCategory::Other, PricingCategory::parse) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_decides_what_is_billed_and_the_flag_only_without_it() {
        let billed = |billable, kind| Pricing::from_fields(billable, Some("service"), kind).map(|p| p.billable);
        assert_eq!(billed(Some(false), Some("regular")), Some(true));
        assert_eq!(billed(Some(true), Some("free_customer_service")), Some(false));
        assert_eq!(billed(None, Some("free_entry_point")), Some(false));
        assert_eq!(billed(Some(true), None), Some(true));
        assert_eq!(billed(Some(false), None), Some(false));
        assert_eq!(billed(None, None), None);
    }

    #[test]
    fn categories_fold_to_what_a_bill_shows() {
        for (raw, folded) in [
            ("service", PricingCategory::Service),
            ("utility", PricingCategory::Utility),
            ("marketing_lite", PricingCategory::Marketing),
            ("authentication_international", PricingCategory::Authentication),
            ("referral_conversion", PricingCategory::Other),
            ("", PricingCategory::Other),
        ] {
            assert_eq!(PricingCategory::parse(raw), folded, "{raw}");
        }
        let unnamed = Pricing::from_fields(Some(true), None, Some("regular")).unwrap();
        assert_eq!(unnamed.category, PricingCategory::Other);
    }
}
