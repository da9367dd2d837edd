//! Event definitions as operators write them: the raw input, its defaults, and the
//! validated [`EventSpec`] that the rest of the system can trust.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::challenge::ChallengeMode;
use crate::phase::{PresaleWindow, Schedule};
use crate::velocity::Limits;

pub const MAX_TIERS: usize = 20;
pub const MAX_ROUNDS: usize = 8;
pub const MAX_BUCKETS: u32 = 64;
pub const MAX_STOCK: i64 = 10_000_000;
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
pub const MAX_PER_USER_LIMIT: u32 = 100;

/// How the edge admits buyers: fixed probabilities per round, automatic, or a
/// fair queue. Serialized as `{"rounds": [p1, ...]}`, `{"mode": "auto",
/// "draw_s": 10}` or `{"mode": "queue", "window_s": 120}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Admission {
    /// Round `i` admits with probability `rounds[i]`; past the last round the last
    /// probability applies.
    Rounds { rounds: Vec<f64> },
    /// The edge derives the probability from the remaining stock and the crowd,
    /// after an opening draw over the first `draw_s` seconds' arrivals
    /// (`core::opening`; 0: none).
    Auto {
        mode: AutoMode,
        #[serde(default = "default_draw_s")]
        draw_s: u32,
    },
    /// A queue at the edge (SPEC §4, "Queue"): a drawn pre-queue, then arrival
    /// order; an admitted user has `window_s` seconds of their own to buy.
    Queue {
        mode: QueueMode,
        #[serde(default = "default_window_s")]
        window_s: u32,
    },
}

impl Admission {
    /// The opening draw's window, seconds, if this is an automatic lottery
    /// with one.
    pub fn draw_s(&self) -> Option<u32> {
        match self {
            Self::Auto { draw_s, .. } if *draw_s > 0 => Some(*draw_s),
            _ => None,
        }
    }

    /// Whether this is an automatic lottery (its probability follows the crowd).
    pub fn is_auto(&self) -> bool {
        matches!(self, Self::Auto { .. })
    }

    /// The queue's exclusive window, if this is a queue.
    pub fn queue_window_s(&self) -> Option<u32> {
        match self {
            Self::Queue { window_s, .. } => Some(*window_s),
            _ => None,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueMode {
    Queue,
}

/// An admitted user's exclusive window in a queue, by default.
pub const DEFAULT_QUEUE_WINDOW_S: u32 = 120;
/// Bounds of the exclusive window, seconds.
pub const QUEUE_WINDOW_S: std::ops::RangeInclusive<u32> = 10..=3_600;

fn default_window_s() -> u32 {
    DEFAULT_QUEUE_WINDOW_S
}

fn default_draw_s() -> u32 {
    crate::opening::DEFAULT_DRAW_S
}

/// The `mode` of the `admission` field as written.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeInput {
    Auto,
    Queue,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoMode {
    Auto,
}

impl Default for Admission {
    fn default() -> Self {
        Self::Rounds { rounds: vec![1.0] }
    }
}

/// The `admission` field as written: its shape is checked by serde (unknown
/// fields and modes refused), its values by [`Admission::from_input`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeInput>,
    /// The queue's exclusive window (mode `queue` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u32>,
    /// The opening draw's window (mode `auto` only; 0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw_s: Option<u32>,
}

impl Admission {
    /// Validates the `admission` field: rounds of 1 to 8 probabilities in
    /// (0, 1], automatic with its opening draw, or a queue with its window —
    /// one of the three.
    pub fn from_input(input: &AdmissionInput) -> Result<Self, FieldError> {
        if input.window_s.is_some() && input.mode != Some(ModeInput::Queue) {
            return Err(FieldError::new(
                "admission.window_s",
                "only a queue has a window",
            ));
        }
        if input.draw_s.is_some() && input.mode != Some(ModeInput::Auto) {
            return Err(FieldError::new(
                "admission.draw_s",
                "only automatic admission has an opening draw",
            ));
        }
        match (&input.rounds, input.mode) {
            (Some(rounds), None) => {
                if rounds.is_empty() || rounds.len() > MAX_ROUNDS {
                    return Err(FieldError::new(
                        "admission.rounds",
                        format!("must hold 1 to {MAX_ROUNDS} probabilities"),
                    ));
                }
                if let Some(i) = rounds.iter().position(|p| !(*p > 0.0 && *p <= 1.0)) {
                    return Err(FieldError::new(
                        format!("admission.rounds[{i}]"),
                        "must be a probability in (0, 1]",
                    ));
                }
                Ok(Self::Rounds {
                    rounds: rounds.clone(),
                })
            }
            (None, Some(ModeInput::Auto)) => {
                let draw_s = input.draw_s.unwrap_or(crate::opening::DEFAULT_DRAW_S);
                if !crate::opening::DRAW_S.contains(&draw_s) {
                    return Err(FieldError::new(
                        "admission.draw_s",
                        format!(
                            "must be {} to {} seconds",
                            crate::opening::DRAW_S.start(),
                            crate::opening::DRAW_S.end()
                        ),
                    ));
                }
                Ok(Self::Auto {
                    mode: AutoMode::Auto,
                    draw_s,
                })
            }
            (None, Some(ModeInput::Queue)) => {
                let window_s = input.window_s.unwrap_or(DEFAULT_QUEUE_WINDOW_S);
                if !QUEUE_WINDOW_S.contains(&window_s) {
                    return Err(FieldError::new(
                        "admission.window_s",
                        format!(
                            "must be {} to {} seconds",
                            QUEUE_WINDOW_S.start(),
                            QUEUE_WINDOW_S.end()
                        ),
                    ));
                }
                Ok(Self::Queue {
                    mode: QueueMode::Queue,
                    window_s,
                })
            }
            _ => Err(FieldError::new(
                "admission",
                "must be {\"rounds\": [..]}, {\"mode\": \"auto\"} or {\"mode\": \"queue\"}",
            )),
        }
    }
}

/// A field that failed validation and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A tier as written by the operator.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierInput {
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// The create/update body for an event. Optional fields take their defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub name: String,
    #[serde(default)]
    pub venue: String,
    #[serde(default)]
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub visible_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
    pub per_user_limit: i64,
    #[serde(default)]
    pub per_order_limit: Option<i64>,
    #[serde(default)]
    pub payment_window_s: Option<i64>,
    #[serde(default)]
    pub dedup_window_s: Option<i64>,
    #[serde(default)]
    pub admission: Option<AdmissionInput>,
    #[serde(default)]
    pub buckets: Option<i64>,
    /// When the door asks for a proof of work (default `auto`: under load).
    #[serde(default)]
    pub challenge: Option<ChallengeMode>,
    /// A window before the opening for holders of presale codes only.
    #[serde(default)]
    pub presale: Option<PresaleWindow>,
    /// Tries per minute the door lets an account and an address make.
    #[serde(default)]
    pub velocity: Option<Limits>,
    pub tiers: Vec<TierInput>,
}

/// A tier that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierSpec {
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// An event definition that passed validation; every field is within bounds and
/// the combination makes sense.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    pub name: String,
    pub venue: String,
    pub description: String,
    pub schedule: Schedule,
    pub per_user_limit: u32,
    pub per_order_limit: u32,
    pub payment_window_s: u32,
    pub dedup_window_s: u32,
    pub admission: Admission,
    pub buckets: u32,
    pub challenge: ChallengeMode,
    pub velocity: Limits,
    pub tiers: Vec<TierSpec>,
}

pub const DEFAULT_PAYMENT_WINDOW_S: i64 = 300;
pub const DEFAULT_DEDUP_WINDOW_S: i64 = 10;

fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min || chars > max {
        let msg = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        };
        return Err(FieldError::new(field, msg));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

fn ranged(field: &str, value: i64, min: i64, max: i64) -> Result<i64, FieldError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

impl EventSpec {
    /// Validates an operator's input, applying defaults.
    pub fn parse(input: &EventInput) -> Result<Self, FieldError> {
        let name = text("name", &input.name, 1, 200)?;
        let venue = text("venue", &input.venue, 0, 200)?;
        let description = text("description", &input.description, 0, 5000)?;
        if input.opens_at < input.visible_at {
            return Err(FieldError::new("opens_at", "must not be before visible_at"));
        }
        if input.closes_at <= input.opens_at {
            return Err(FieldError::new("closes_at", "must be after opens_at"));
        }
        if let Some(presale) = &input.presale {
            if presale.opens_at < input.visible_at {
                return Err(FieldError::new(
                    "presale.opens_at",
                    "must not be before visible_at",
                ));
            }
            if presale.closes_at <= presale.opens_at {
                return Err(FieldError::new(
                    "presale.closes_at",
                    "must be after presale.opens_at",
                ));
            }
            if presale.closes_at > input.opens_at {
                return Err(FieldError::new(
                    "presale.closes_at",
                    "must not be after opens_at: the presale comes before the general sale",
                ));
            }
        }
        let per_user_limit = ranged(
            "per_user_limit",
            input.per_user_limit,
            1,
            MAX_PER_USER_LIMIT.into(),
        )?;
        let per_order_limit = ranged(
            "per_order_limit",
            input.per_order_limit.unwrap_or(per_user_limit),
            1,
            per_user_limit,
        )?;
        let payment_window_s = ranged(
            "payment_window_s",
            input.payment_window_s.unwrap_or(DEFAULT_PAYMENT_WINDOW_S),
            10,
            86_400,
        )?;
        let dedup_window_s = ranged(
            "dedup_window_s",
            input.dedup_window_s.unwrap_or(DEFAULT_DEDUP_WINDOW_S),
            0,
            3_600,
        )?;
        let admission = match &input.admission {
            None => Admission::default(),
            Some(admission) => Admission::from_input(admission)?,
        };
        let buckets = ranged("buckets", input.buckets.unwrap_or(1), 1, MAX_BUCKETS.into())?;
        let velocity = input.velocity.unwrap_or_default();
        ranged(
            "velocity.account_per_min",
            velocity.account_per_min.into(),
            1,
            1_000,
        )?;
        ranged(
            "velocity.address_per_min",
            velocity.address_per_min.into(),
            1,
            1_000_000,
        )?;
        if input.tiers.is_empty() || input.tiers.len() > MAX_TIERS {
            return Err(FieldError::new(
                "tiers",
                format!("must hold 1 to {MAX_TIERS} tiers"),
            ));
        }
        let tiers = input
            .tiers
            .iter()
            .enumerate()
            .map(|(i, tier)| {
                let name = text(&format!("tiers[{i}].name"), &tier.name, 1, 100)?;
                let price_cents = ranged(
                    &format!("tiers[{i}].price_cents"),
                    tier.price_cents,
                    0,
                    MAX_PRICE_CENTS,
                )?;
                let stock = ranged(&format!("tiers[{i}].stock"), tier.stock, buckets, MAX_STOCK)
                    .map_err(|e| {
                        FieldError::new(
                            e.field,
                            format!("must be between {buckets} (one per bucket) and {MAX_STOCK}"),
                        )
                    })?;
                Ok(TierSpec {
                    name,
                    price_cents,
                    stock,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        for (i, tier) in tiers.iter().enumerate() {
            if tiers[..i].iter().any(|t| t.name == tier.name) {
                return Err(FieldError::new(
                    format!("tiers[{i}].name"),
                    "must be unique within the event",
                ));
            }
        }
        Ok(Self {
            name,
            venue,
            description,
            schedule: Schedule {
                visible_at: input.visible_at,
                opens_at: input.opens_at,
                closes_at: input.closes_at,
                presale: input.presale,
            },
            per_user_limit: per_user_limit as u32,
            per_order_limit: per_order_limit as u32,
            payment_window_s: payment_window_s as u32,
            dedup_window_s: dedup_window_s as u32,
            admission,
            buckets: buckets as u32,
            challenge: input.challenge.unwrap_or_default(),
            velocity,
            tiers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> serde_json::Value {
        json!({
            "name": "Night Train",
            "venue": "Hall 1",
            "visible_at": "2026-01-01T10:00:00Z",
            "opens_at": "2026-01-01T12:00:00Z",
            "closes_at": "2026-01-01T14:00:00Z",
            "per_user_limit": 2,
            "tiers": [{"name": "Seat", "price_cents": 1500, "stock": 100}]
        })
    }

    fn parse(value: serde_json::Value) -> Result<EventSpec, FieldError> {
        EventSpec::parse(&serde_json::from_value(value).unwrap())
    }

    #[test]
    fn defaults_apply() {
        let spec = parse(input()).unwrap();
        assert_eq!(spec.per_order_limit, 2);
        assert_eq!(spec.payment_window_s, 300);
        assert_eq!(spec.dedup_window_s, 10);
        assert_eq!(spec.buckets, 1);
        assert_eq!(spec.admission, Admission::Rounds { rounds: vec![1.0] });
        assert_eq!(spec.description, "");
    }

    #[test]
    fn invalid_combinations_name_the_field() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("name", json!("  ")),
            ("closes_at", json!("2026-01-01T12:00:00Z")),
            ("per_user_limit", json!(0)),
            ("per_order_limit", json!(3)),
            ("payment_window_s", json!(5)),
            ("dedup_window_s", json!(-1)),
            ("buckets", json!(101)),
            ("tiers", json!([])),
            ("admission", json!({"rounds": [0.5], "mode": "auto"})),
        ];
        for (field, value) in cases {
            let mut body = input();
            body[field] = value;
            let err = parse(body).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn nested_fields_are_named_precisely() {
        let mut body = input();
        body["admission"] = json!({"rounds": [0.5, 1.5]});
        assert_eq!(parse(body).unwrap_err().field, "admission.rounds[1]");
        let mut body = input();
        body["tiers"] = json!([
            {"name": "A", "price_cents": 1, "stock": 1},
            {"name": "A", "price_cents": 1, "stock": 1}
        ]);
        assert_eq!(parse(body).unwrap_err().field, "tiers[1].name");
        let mut body = input();
        body["buckets"] = json!(4);
        body["tiers"] = json!([{"name": "A", "price_cents": 1, "stock": 3}]);
        assert_eq!(parse(body).unwrap_err().field, "tiers[0].stock");
        let mut body = input();
        body["opens_at"] = json!("2026-01-01T09:00:00Z");
        assert_eq!(parse(body).unwrap_err().field, "opens_at");
    }

    #[test]
    fn admission_forms() {
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<AdmissionInput>(v)
                .map_err(|e| e.to_string())
                .and_then(|i| Admission::from_input(&i).map_err(|e| e.field))
        };
        let auto = parse(json!({"mode": "auto"})).unwrap();
        assert_eq!(
            serde_json::to_value(&auto).unwrap(),
            json!({"mode": "auto", "draw_s": 10})
        );
        assert_eq!(auto.draw_s(), Some(10));
        let undrawn = parse(json!({"mode": "auto", "draw_s": 0})).unwrap();
        assert_eq!(undrawn.draw_s(), None);
        assert_eq!(
            parse(json!({"mode": "auto", "draw_s": 301})),
            Err("admission.draw_s".into())
        );
        assert_eq!(
            parse(json!({"rounds": [1], "draw_s": 5})),
            Err("admission.draw_s".into())
        );
        let rounds = parse(json!({"rounds": [0.3, 1]})).unwrap();
        assert_eq!(
            serde_json::to_value(&rounds).unwrap(),
            json!({"rounds": [0.3, 1.0]})
        );
        let queue = parse(json!({"mode": "queue"})).unwrap();
        assert_eq!(
            serde_json::to_value(&queue).unwrap(),
            json!({"mode": "queue", "window_s": 120})
        );
        assert_eq!(queue.queue_window_s(), Some(120));
        assert_eq!(auto.queue_window_s(), None);
        let short = parse(json!({"mode": "queue", "window_s": 30})).unwrap();
        assert_eq!(short.queue_window_s(), Some(30));
        assert_eq!(
            parse(json!({"mode": "queue", "window_s": 5})),
            Err("admission.window_s".into())
        );
        assert_eq!(
            parse(json!({"mode": "auto", "window_s": 60})),
            Err("admission.window_s".into())
        );
        // Stored before the window (the draw) existed: the default.
        assert_eq!(
            serde_json::from_value::<Admission>(json!({"mode": "queue"})).unwrap(),
            queue
        );
        assert_eq!(
            serde_json::from_value::<Admission>(json!({"mode": "auto"})).unwrap(),
            auto
        );
        for stored in [auto, undrawn, rounds, queue, short] {
            let text = serde_json::to_string(&stored).unwrap();
            assert_eq!(serde_json::from_str::<Admission>(&text).unwrap(), stored);
        }
        assert_eq!(parse(json!({"rounds": []})), Err("admission.rounds".into()));
        assert_eq!(
            parse(json!({"rounds": [0]})),
            Err("admission.rounds[0]".into())
        );
        assert_eq!(parse(json!({})), Err("admission".into()));
        assert!(parse(json!({"mode": "fast"})).is_err());
        assert!(parse(json!({"rounds": [1], "extra": 1})).is_err());
    }

    #[test]
    fn unknown_fields_and_shapes_are_refused() {
        for (field, value) in [
            ("price", json!(3)),
            ("admission", json!("auto")),
            ("admission", json!({"mode": "magic"})),
        ] {
            let mut body = input();
            body[field] = value;
            assert!(
                serde_json::from_value::<EventInput>(body).is_err(),
                "{field}"
            );
        }
    }
}
