//! User roles and what each may do.

use serde::{Deserialize, Serialize};

/// A user's role. Customers buy; operators create and submit events; admins also
/// approve or reject them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Role {
    Customer = 1,
    Operator = 2,
    Admin = 3,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Customer),
            2 => Some(Self::Operator),
            3 => Some(Self::Admin),
            _ => None,
        }
    }

    /// Operators and admins manage events.
    pub const fn manages_events(self) -> bool {
        matches!(self, Self::Operator | Self::Admin)
    }

    /// Only admins review events.
    pub const fn reviews_events(self) -> bool {
        matches!(self, Self::Admin)
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Self::Customer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownRole),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("role must be customer, operator or admin")]
pub struct UnknownRole;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_byte_forms_round_trip() {
        for role in [Role::Customer, Role::Operator, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(Role::from_u8(role as u8), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(Role::from_u8(0), None);
    }
}
