//! The Roundtable conference model, shared by the server and the browser client.
//!
//! This crate does no IO: it compiles for the server and for `wasm32`. It defines
//! - the HTTP API's requests and answers, one definition for the server and the
//!   browser apps ([`api`]);
//! - the conference model ([`model`]): conferences, children, participants, roles,
//!   phases, scores, categories and decisions;
//! - the heading templates a council can choose from ([`headings`]);
//! - the layout of the collaborative document ([`doc`]) with typed helpers to read and
//!   write it;
//! - who may write which part of the document ([`permissions`]);
//! - the gate, which decides without IO whether a participant may make an update, before
//!   any of it reaches the document ([`gate`]), and the recorder of what an applied
//!   update changed, by which the gate checks again ([`guard`]);
//! - the layout of the drafted plan: danger statements and safety goals, actions,
//!   contingency and bottom lines ([`plan`]);
//! - Roundtable's optional additions to the sync protocol ([`protocol`]);
//! - the decision for each child, attendance and quorum, the next meetings and the
//!   conference's closing, as the document records them ([`record`]);
//! - the safety scale's subjects, words, life and summary ([`scale`]);
//! - one client's side of the sync, without IO: the local copy, the changes the server
//!   has not confirmed, and what to send or do next ([`session`]);
//! - a check of a sync message's declared counts and nesting before yrs reads it
//!   ([`wire`]);
//! - bank holidays of England and Wales, working days, and the dates by which the
//!   core group and the next review must meet after a conference ([`dates`]).

/// Spells an enum of plain words, in the one place each word is written: `ALL` (in
/// order), `as_str` (the word stored in the database and sent as JSON, the same as
/// its serde name) and `parse`.
macro_rules! words {
    ($name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: [$name; [$($word),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod api;
pub mod dates;
pub mod doc;
pub mod gate;
pub mod guard;
pub mod headings;
pub mod model;
pub mod order;
pub mod permissions;
pub mod plan;
pub mod protocol;
pub mod record;
pub mod scale;
pub mod session;
pub mod wire;

pub use model::*;
