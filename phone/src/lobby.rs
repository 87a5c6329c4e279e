//! Joining from the room (`/lobby?code=…`): someone in the meeting room types
//! the code on the screen (or scans the QR code, which fills it in) and their
//! name, then waits until the chair lets them in.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

use roundtable_shared::ConferenceId;

use crate::http::{self as api, Me};
use crate::set_page_title;

/// How often a waiting phone asks whether the chair has let them in.
const ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// A room code as people type it: capitals, no spaces.
pub fn tidy_code(typed: &str) -> String {
    roundtable_shared::api::tidy_room_code(typed)
}

/// A parameter of the page's address (`?code=…&conference=…`), if it is there.
fn in_address(name: &str) -> Option<String> {
    let search = location().search().unwrap_or_default();
    search.trim_start_matches('?').split('&').find_map(|pair| {
        pair.strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// The code in the address (`?code=ABC234`), if any.
fn code_in_address() -> String {
    in_address("code")
        .map(|c| tidy_code(&c))
        .unwrap_or_default()
}

/// The conference the QR code's address names, if it does.
fn conference_in_address() -> Option<ConferenceId> {
    in_address("conference")?.parse().ok().map(ConferenceId)
}

/// The page for joining from the room.
#[component]
pub fn LobbyPage() -> impl IntoView {
    set_page_title("Join the meeting");
    let from_address = StoredValue::new(code_in_address());
    let conference = conference_in_address();
    let code =
        RwSignal::new(from_address.with_value(|c| roundtable_shared::api::spaced_room_code(c)));
    let name = RwSignal::new(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let (joined, set_joined) = signal(None::<ConferenceId>);
    let (busy, set_busy) = signal(false);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (room_code, person) = (
            tidy_code(&code.get_untracked()),
            name.get_untracked().trim().to_owned(),
        );
        // The conference the QR code named, as long as its code is the one sent.
        let conference = conference.filter(|_| from_address.with_value(|c| *c == room_code));
        if room_code.is_empty() || person.is_empty() {
            set_problem.set(Some(
                "Enter the code on the screen and your name.".to_owned(),
            ));
            return;
        }
        set_busy.set(true);
        spawn_local(async move {
            match api::enter_lobby(&room_code, &person, conference).await {
                Ok(joined) => set_joined.set(Some(joined.conference_id)),
                Err(error) => set_problem.set(Some(error.to_string())),
            }
            set_busy.set(false);
        });
    };
    move || {
        match joined.get() {
        Some(conference_id) => view! { <Waiting conference_id/> }.into_any(),
        None => view! {
            <main id="main">
                <h1>"Join the meeting"</h1>
                <p class="lede">"You can follow the meeting and give your views from your phone."</p>
                <form on:submit=on_submit novalidate>
                    <div class="field">
                        <label for="room-code">"The code on the screen"</label>
                        <input
                            id="room-code"
                            type="text"
                            autocomplete="off"
                            autocapitalize="characters"
                            spellcheck="false"
                            maxlength="20"
                            bind:value=code
                        />
                    </div>
                    <div class="field">
                        <label for="your-name">"Your name"</label>
                        <input id="your-name" type="text" autocomplete="name" maxlength="100" bind:value=name/>
                    </div>
                    <div role="alert" class="alert-region">
                        {move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}
                    </div>
                    <button type="submit" aria-disabled=move || busy.get().to_string()>
                        "Ask to join"
                    </button>
                </form>
                <p>
                    "If you were sent a personal link, open that instead: you will not need to wait."
                </p>
            </main>
        }
        .into_any(),
    }
    }
}

/// What a waiting person sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Waiting,
    TurnedAway,
}

/// "Please wait": shown until the chair lets the person in, then the board.
#[component]
pub fn Waiting(conference_id: ConferenceId) -> impl IntoView {
    set_page_title("Waiting to join");
    let (state, set_state) = signal(Wait::Waiting);
    let ask = move || {
        spawn_local(async move {
            match api::me().await {
                Ok(Some(Me::Participant {
                    admitted: true,
                    participant,
                    ..
                })) => {
                    let home = crate::home_of(conference_id, participant.role);
                    let _ = location().assign(&home);
                }
                Ok(Some(Me::Participant {
                    admitted: false, ..
                }))
                | Err(_) => {}
                // Turning someone away ends their session.
                Ok(_) => set_state.set(Wait::TurnedAway),
            }
        });
    };
    ask();
    if let Ok(interval) = set_interval_with_handle(ask, ASK_EVERY) {
        on_cleanup(move || interval.clear());
    }
    view! {
        <main id="main">
            <h1>"Waiting to join"</h1>
            {move || match state.get() {
                Wait::Waiting => view! {
                    <p role="status" class="lede">"Please wait. The chair will let you in soon."</p>
                    <p>"Keep this page open. It will change by itself when you are in."</p>
                }
                .into_any(),
                Wait::TurnedAway => view! {
                    <div role="alert">
                        <p class="lede">"The chair has not let you into this meeting."</p>
                    </div>
                    <p>"If you think this is a mistake, please speak to the chair."</p>
                }
                .into_any(),
            }}
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_code_is_tidied() {
        assert_eq!(tidy_code(" abc 234 "), "ABC234");
        assert_eq!(tidy_code("ab-c2"), "ABC2");
    }
}
