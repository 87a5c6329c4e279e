//! The room view (`/conference/{id}/room`): the board projected on the wall.
//!
//! It is made to be read from the back of a meeting room: the headings side by
//! side in large, high-contrast type, the stage of the meeting and who is here,
//! and nothing to click. While people are arriving it shows a QR code and the
//! room code for joining from a phone. It follows the meeting by itself, and
//! makes the words smaller as the board fills so that everything stays on the
//! screen.

use leptos::{html, prelude::*, task::spawn_local};
use roundtable_shared::model::Phase;
use wasm_bindgen::JsCast;

use crate::api;
use crate::board::read::Snapshot;
use crate::live::Live;
use crate::set_page_title;

/// The largest and smallest type on the wall, in CSS pixels.
const LARGEST: f64 = 40.0;
const SMALLEST: f64 = 12.0;

/// Whether the room is still arriving: the join panel is on the screen.
fn arriving(phase: Option<Phase>) -> bool {
    matches!(phase, None | Some(Phase::PreMeet | Phase::Introductions))
}

/// The room view of the conference `conference_id`.
#[component]
pub fn RoomPage(conference_id: String) -> impl IntoView {
    set_page_title("Room view");
    let (state, set_state) = signal(None::<Result<api::Conference, String>>);
    spawn_local(async move {
        set_state.set(Some(
            api::conference(&conference_id)
                .await
                .map_err(|e| e.to_string()),
        ));
    });
    move || match state.get() {
        None => view! { <main id="main"><p role="status">"Opening the room view…"</p></main> }
            .into_any(),
        Some(Err(reason)) => view! {
            <main id="main">
                <h1>"Room view"</h1>
                <div role="alert"><p class="problem">{reason}</p></div>
            </main>
        }
        .into_any(),
        Some(Ok(conference)) => view! { <Room conference/> }.into_any(),
    }
}

#[component]
fn Room(conference: api::Conference) -> impl IntoView {
    let me = conference.you.id.to_string();
    let conference = conference.conference;
    let live = Live::connect(&conference.id.to_string(), &me, false);
    let signals = live.signals();
    let live = StoredValue::new_local(live);
    let snapshot = Memo::new(move |_| {
        signals.version.track();
        live.with_value(|live| live.read(|txn| Snapshot::read(txn)))
    });
    let title = conference.title.clone();
    Effect::new(move |_| {
        let title = snapshot
            .with(|s| s.title.clone())
            .unwrap_or_else(|| title.clone());
        set_page_title(&format!("{title}: room view"));
    });
    let origin = location().origin().unwrap_or_default();
    // The address names the conference too: with it, the phone that scans it gets
    // in even while strangers exhaust the server's allowance of code guesses.
    let join_address = format!(
        "{origin}/lobby?code={}&conference={}",
        conference.room_code, conference.id
    );
    let code = crate::qr::draw(&join_address);
    let room_code = roundtable_shared::api::spaced_room_code(&conference.room_code);
    let board = NodeRef::<html::Div>::new();

    // Fit the words to the screen after every change, and when the window
    // changes size.
    Effect::new(move |_| {
        snapshot.track();
        signals.people.track();
        request_animation_frame(move || fit(board));
    });
    let on_resize = window_event_listener(leptos::ev::resize, move |_| fit(board));
    on_cleanup(move || on_resize.remove());

    let fallback_title = conference.title.clone();
    view! {
        <main id="main" class="room">
            <header class="room-header">
                <h1>{move || snapshot.with(|s| s.title.clone()).unwrap_or_else(|| fallback_title.clone())}</h1>
                <p class="phase">{move || snapshot.with(|s| s.phase.map(|p| p.label()).unwrap_or(""))}</p>
                <p role="status" class=move || signals.connection.get().class()>
                    {move || signals.connection.get().words()}
                </p>
            </header>
            {move || {
                arriving(snapshot.with(|s| s.phase))
                    .then(|| {
                        let code = code.clone();
                        view! {
                            <section class="join-panel" aria-labelledby="join-heading">
                                <h2 id="join-heading">"Join from your phone"</h2>
                                {code
                                    .map(|code| {
                                        let view_box = format!("0 0 {0} {0}", code.size);
                                        view! {
                                            <svg class="qr" viewBox=view_box role="img" aria-label="QR code to join the meeting">
                                                <rect width="100%" height="100%" fill="#fff"></rect>
                                                <path d=code.path fill="#000"></path>
                                            </svg>
                                        }
                                    })}
                                <p>"Scan the code, or go to " <strong>{format!("{origin}/lobby")}</strong></p>
                                <p>"and enter the code " <strong class="room-code">{room_code.clone()}</strong></p>
                            </section>
                        }
                    })
            }}
            <crate::scale::RoomScale
                scale=Signal::derive(move || snapshot.with(|s| s.current_scale().cloned()))
                voters=Signal::derive(move || snapshot.with(|s| s.voters()))
                scaling=Signal::derive(move || snapshot.with(|s| s.phase == Some(Phase::Scaling)))
            />
            <div class="room-board" node_ref=board>
                {move || {
                    snapshot
                        .with(|s| {
                            s.headings
                                .iter()
                                .map(|heading| {
                                    let items: Vec<(String, Vec<String>)> = s
                                        .items
                                        .iter()
                                        .filter(|i| i.heading == heading.key)
                                        .map(|i| {
                                            let mut details = s.children_words(i);
                                            if let Some(said_by) = &i.said_by {
                                                details.push(s.said_by_words(said_by));
                                            }
                                            (i.text.clone(), details)
                                        })
                                        .collect();
                                    view! {
                                        <section class="room-heading">
                                            <h2>{heading.title.clone()}</h2>
                                            <ul>
                                                {items
                                                    .into_iter()
                                                    .map(|(text, details)| {
                                                        view! {
                                                            <li>
                                                                {text}
                                                                {(!details.is_empty()).then(|| view! { <span class="room-details">{details.join(" · ")}</span> })}
                                                            </li>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </ul>
                                        </section>
                                    }
                                })
                                .collect_view()
                        })
                }}
            </div>
            <footer class="room-footer">
                <h2 class="visually-hidden">"Who is here"</h2>
                <p>
                    {move || {
                        let people = signals.people.get();
                        if people.is_empty() {
                            String::new()
                        } else {
                            let names: Vec<String> = people.into_iter().map(|p| p.name).collect();
                            format!("Here: {}", names.join(", "))
                        }
                    }}
                </p>
            </footer>
        </main>
    }
}

/// Sets the board's type to the largest size at which no heading overflows.
fn fit(board: NodeRef<html::Div>) {
    let Some(board) = board.get_untracked() else {
        return;
    };
    let element: &web_sys::HtmlElement = board.unchecked_ref();
    let style = element.style();
    let fits = |size: f64| {
        let _ = style.set_property("font-size", &format!("{size}px"));
        let children = element.children();
        (0..children.length())
            .filter_map(|i| children.item(i))
            .all(|column| column.scroll_height() <= column.client_height() + 1)
    };
    // Binary search on whole pixels: a dozen layouts at most.
    let (mut low, mut high) = (SMALLEST, LARGEST);
    if fits(high) {
        return;
    }
    while high - low > 1.0 {
        let middle = ((low + high) / 2.0).floor();
        if fits(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }
    fits(low);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_panel_shows_while_people_arrive() {
        assert!(arriving(None));
        assert!(arriving(Some(Phase::PreMeet)));
        assert!(arriving(Some(Phase::Introductions)));
        assert!(!arriving(Some(Phase::InformationSharing)));
    }
}
