//! The `words!` macro: enums of CloudWatch words ([`crate::model`], [`crate::state`]).

/// Declares an enum of CloudWatch words with parsing that lists the valid ones.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every value, in CloudWatch's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The CloudWatch spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)+ }
            }

            /// The valid spellings, comma-separated (for error messages).
            pub fn expected() -> String {
                [$($word,)+].join(", ")
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!("must be one of {} (got {s:?})", Self::expected())),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use words;
