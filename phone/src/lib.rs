//! The pages a phone opens, built as their own small WebAssembly module: no
//! collaborative document, so a phone on a poor connection downloads little.
//!
//! - `/join#<token>` turns a personal join link into a session ([`join`]);
//! - `/lobby?code=<room code>` lets someone in the room ask to join ([`lobby`]);
//! - `/conference/<id>/score` is the safety scale, made for one hand ([`score`]).
//!
//! `loader.js` chooses this module for those paths and the full app for the rest.
//! The full app links this crate too, for [`http`] and the revealed scores'
//! display ([`score::ScaleResults`]).

pub mod http;
pub mod join;
pub mod lobby;
pub mod score;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

/// The pages this module shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Join,
    Lobby,
    Score {
        conference: String,
    },
    /// Not a phone page: the full app's.
    Elsewhere,
}

/// Which page a path shows. A trailing slash makes no difference.
pub fn page_for_path(pathname: &str) -> Page {
    match pathname.trim_end_matches('/') {
        "/join" => Page::Join,
        "/lobby" => Page::Lobby,
        path => match path
            .strip_prefix("/conference/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((id, "score")) if is_id(id) => Page::Score {
                conference: id.to_owned(),
            },
            _ => Page::Elsewhere,
        },
    }
}

/// Whether a path segment looks like a conference id (a UUID's characters).
pub fn is_id(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 64
        && segment.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Where someone goes once they are in a conference: the family (on their phones)
/// to the safety scale page, which links to the board; everyone else to the board.
pub fn home_of(
    conference_id: roundtable_shared::ConferenceId,
    role: Option<roundtable_shared::Role>,
) -> String {
    let family_side = role.is_some_and(roundtable_shared::Role::is_family_side);
    if family_side {
        format!("/conference/{conference_id}/score")
    } else {
        format!("/conference/{conference_id}")
    }
}

#[cfg(feature = "entry")]
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let pathname = location().pathname().unwrap_or_default();
    let page = page_for_path(&pathname);
    let token = match page {
        Page::Join => take_join_token(),
        _ => None,
    };
    if let Some(loading) = document().get_element_by_id("loading") {
        loading.remove();
    }
    mount_to_body(move || match page {
        Page::Join => view! { <join::JoinPage token/> }.into_any(),
        Page::Lobby => view! { <lobby::LobbyPage/> }.into_any(),
        Page::Score { conference } => {
            view! { <score::ScorePage conference_id=conference/> }.into_any()
        }
        // loader.js sends only the paths above here.
        Page::Elsewhere => {
            view! { <p role="alert">"This page is not part of the phone app."</p> }.into_any()
        }
    });
}

/// Reads the token from a personal join link (`/join#<token>`) and removes it
/// from the address bar at once, so it is not left in the browser's history,
/// bookmarks or a screenshot of the screen. The token lives in the fragment
/// because browsers never send the fragment to a server, so it cannot end up
/// in a log on the way.
pub fn take_join_token() -> Option<String> {
    let location = location();
    let fragment = location.hash().unwrap_or_default();
    if fragment.is_empty() {
        return None;
    }
    let address_without_fragment = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    let removed = window().history().and_then(|history| {
        history.replace_state_with_url(&JsValue::NULL, "", Some(&address_without_fragment))
    });
    if removed.is_err() {
        web_sys::console::warn_1(
            &"Roundtable: could not remove the join link from the address bar".into(),
        );
    }
    let token = fragment.trim_start_matches('#').trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Sets the browser tab's title, which is also the first thing a screen
/// reader announces for a page.
pub fn set_page_title(title: &str) {
    document().set_title(&format!("{title} – Roundtable"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_pages_are_found_by_their_paths() {
        let id = "0b6f3c1e-5d2a-4c5e-9a51-3f6e2d1c0b9a";
        assert_eq!(page_for_path("/join"), Page::Join);
        assert_eq!(page_for_path("/join/"), Page::Join);
        assert_eq!(page_for_path("/lobby"), Page::Lobby);
        assert_eq!(
            page_for_path(&format!("/conference/{id}/score")),
            Page::Score {
                conference: id.into()
            }
        );
        assert_eq!(page_for_path(&format!("/conference/{id}")), Page::Elsewhere);
        assert_eq!(page_for_path("/conference/x y/score"), Page::Elsewhere);
        assert_eq!(page_for_path("/"), Page::Elsewhere);
    }

    #[test]
    fn the_family_lands_on_the_scale_and_professionals_on_the_board() {
        use roundtable_shared::{ConferenceId, Role};
        let k: ConferenceId = "0b5e3f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".parse().unwrap();
        assert_eq!(
            home_of(k, Some(Role::Parent)),
            format!("/conference/{k}/score")
        );
        assert_eq!(
            home_of(k, Some(Role::Child)),
            format!("/conference/{k}/score")
        );
        assert_eq!(
            home_of(k, Some(Role::Professional)),
            format!("/conference/{k}")
        );
        assert_eq!(home_of(k, None), format!("/conference/{k}"));
    }
}
