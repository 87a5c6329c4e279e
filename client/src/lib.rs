//! Roundtable's browser app: a Leptos app rendered in the browser (CSR) and
//! compiled to WebAssembly.
//!
//! Its pages, chosen by the address's path:
//! - `/` tells people what Roundtable is, lets a chair sign in, and lists the
//!   chair's conferences ([`landing`]);
//! - `/new` sets up a conference ([`new_conference`]);
//! - `/conference/<id>` is the conference's live board ([`board`]), with the
//!   chair's tools for running the meeting ([`chair`]);
//! - `/conference/<id>/room` is the room view for the wall ([`room`]);
//! - `/conference/<id>/record`, `/letter` and `/audit` are the chair's record, the
//!   draft letter to the family and the audit log ([`record`]).
//!
//! Joining (`/join`, `/lobby`) and the safety scale page (`/conference/<id>/score`)
//! are the phone's own small module, `roundtable-phone`; `loader.js` starts that one
//! for those paths.
//!
//! The app talks to the server only through the small JSON API in [`api`].
//! It never stores a secret: the server keeps the session in an HttpOnly
//! cookie, and the join token is removed from the address bar before
//! anything else happens.

mod api;
mod board;
mod chair;
mod decision;
mod landing;
mod live;
mod new_conference;
mod plan;
mod qr;
mod record;
mod room;
mod scale;
mod text;
mod words;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

/// The pages the app knows, decided once when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Page {
    Landing,
    NewConference,
    Conference { id: String },
    Room { id: String },
    Record { id: String },
    Letter { id: String },
    Audit { id: String },
    NotFound,
}

/// Which page a path shows. A trailing slash makes no difference.
fn page_for_path(pathname: &str) -> Page {
    match pathname.trim_end_matches('/') {
        "" | "/index.html" => Page::Landing,
        "/new" => Page::NewConference,
        path => match path
            .strip_prefix("/conference/")
            .map(|rest| rest.split_once('/'))
        {
            Some(None) => {
                let id = &path["/conference/".len()..];
                if is_id(id) {
                    Page::Conference { id: id.to_owned() }
                } else {
                    Page::NotFound
                }
            }
            Some(Some((id, "room"))) if is_id(id) => Page::Room { id: id.to_owned() },
            Some(Some((id, "record"))) if is_id(id) => Page::Record { id: id.to_owned() },
            Some(Some((id, "letter"))) if is_id(id) => Page::Letter { id: id.to_owned() },
            Some(Some((id, "audit"))) if is_id(id) => Page::Audit { id: id.to_owned() },
            _ => Page::NotFound,
        },
    }
}

/// Whether a path segment looks like a conference id (a UUID's characters).
fn is_id(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 64
        && segment.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Runs when the WebAssembly module has loaded.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();

    let pathname = location().pathname().unwrap_or_default();
    let page = page_for_path(&pathname);

    // index.html shows "Loading…" until the app is ready to replace it.
    if let Some(loading) = document().get_element_by_id("loading") {
        loading.remove();
    }

    mount_to_body(move || match page {
        Page::Landing => view! { <landing::LandingPage/> }.into_any(),
        Page::NewConference => view! { <new_conference::NewConferencePage/> }.into_any(),
        Page::Conference { id } => view! { <board::BoardPage conference_id=id/> }.into_any(),
        Page::Room { id } => view! { <room::RoomPage conference_id=id/> }.into_any(),
        Page::Record { id } => view! { <record::RecordPage conference_id=id/> }.into_any(),
        Page::Letter { id } => view! { <record::LetterPage conference_id=id/> }.into_any(),
        Page::Audit { id } => view! { <record::AuditPage conference_id=id/> }.into_any(),
        Page::NotFound => view! { <NotFoundPage/> }.into_any(),
    });
}

pub(crate) use roundtable_phone::set_page_title;

/// Shown for any path the app does not know.
#[component]
fn NotFoundPage() -> impl IntoView {
    set_page_title("Page not found");
    view! {
        <main id="main">
            <h1>"Page not found"</h1>
            <p>"If you typed the address, check it is correct."</p>
            <p>
                "If you followed a link from an invitation, ask the chair of your conference "
                "for a new link."
            </p>
            <p>
                <a href="/">"Go to the Roundtable home page"</a>
            </p>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pathname: &str, expected: Page) {
        assert_eq!(page_for_path(pathname), expected, "path {pathname:?}");
    }

    #[test]
    fn the_home_page_is_at_the_root() {
        check("/", Page::Landing);
        check("", Page::Landing);
        check("/index.html", Page::Landing);
    }

    #[test]
    fn the_new_conference_form_is_at_new() {
        check("/new", Page::NewConference);
        check("/new/", Page::NewConference);
    }

    #[test]
    fn a_conference_board_is_at_its_id() {
        let id = "0b6f3c1e-5d2a-4c5e-9a51-3f6e2d1c0b9a";
        check(
            &format!("/conference/{id}"),
            Page::Conference { id: id.to_owned() },
        );
        check(
            &format!("/conference/{id}/"),
            Page::Conference { id: id.to_owned() },
        );
        check(
            &format!("/conference/{id}/room"),
            Page::Room { id: id.to_owned() },
        );
        check("/conference/", Page::NotFound);
        check("/conference/a/b", Page::NotFound);
        check(&format!("/conference/{id}/other"), Page::NotFound);
    }

    #[test]
    fn anything_else_is_not_found() {
        check("/joinx", Page::NotFound);
        check("/admin", Page::NotFound);
    }
}
