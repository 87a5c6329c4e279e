//! The join page (`/join#<token>`): where a personal join link lands.
//!
//! The token has already been taken out of the address bar by the time this
//! page is built (see [`take_join_token`]). Here it is exchanged for a session
//! with `POST /api/join`. Opening `/join` again later, with no token, asks
//! the server who is signed in, so a reload does not lose the welcome.

use leptos::{prelude::*, task::spawn_local};

use roundtable_shared::{ConferenceId, Role};

use crate::http::{self as api, ApiError, Me};
use crate::{set_page_title, take_join_token};

/// What the join page is showing.
#[derive(Debug, Clone, PartialEq)]
enum JoinState {
    Joining,
    /// In the conference. `waiting` is true while the chair has not yet let
    /// the person in from the lobby.
    Joined {
        name: String,
        conference_id: ConferenceId,
        /// Their role, once the chair has given one.
        role: Option<Role>,
        waiting: bool,
    },
    /// The link did not work; the sentence says why.
    Failed(String),
    /// The page was opened without a link's token and nobody is signed in.
    NoLink,
}

/// The join page. `token` is the secret from the personal join link, if the
/// address had one.
#[component]
pub fn JoinPage(token: Option<String>) -> impl IntoView {
    set_page_title("Join your conference");
    let (state, set_state) = signal(JoinState::Joining);

    let open = move |token: Option<String>| {
        set_state.set(JoinState::Joining);
        spawn_local(async move { set_state.set(join_with(token).await) });
    };
    open(token);

    // A join link pasted into a tab that already shows this page changes
    // only the fragment, and that does not reload the page: join again here.
    let listener = window_event_listener_untyped("hashchange", move |_| {
        if let Some(token) = take_join_token() {
            open(Some(token));
        }
    });
    on_cleanup(move || listener.remove());

    view! {
        <main id="main">
            <h1>"Join your conference"</h1>
            {move || match state.get() {
                JoinState::Joining => {
                    view! { <p role="status">"Opening your conference…"</p> }.into_any()
                }
                JoinState::Joined { name, conference_id, role, waiting } => {
                    view! { <Welcome name conference_id role waiting/> }.into_any()
                }
                JoinState::Failed(reason) => {
                    view! {
                        <div role="alert">
                            <p class="problem">{reason}</p>
                        </div>
                        <p>
                            "If you need a new link, ask the chair of the conference "
                            "or your social worker."
                        </p>
                    }
                        .into_any()
                }
                JoinState::NoLink => {
                    view! {
                        <p>
                            "To join a conference, open the personal link the chair sent you. "
                            "It is in your invitation, by email or text message."
                        </p>
                        <p>
                            "If you cannot find it, ask the chair of the conference "
                            "or your social worker."
                        </p>
                    }
                        .into_any()
                }
            }}
        </main>
    }
}

/// Joins with a link's token; without one, asks who is signed in, so that
/// reloading the page after joining still shows the welcome.
async fn join_with(token: Option<String>) -> JoinState {
    match token {
        Some(token) => match api::join(&token).await {
            Ok(joined) => JoinState::Joined {
                name: joined.participant.name,
                conference_id: joined.conference_id,
                role: joined.participant.role,
                waiting: false,
            },
            Err(error) => JoinState::Failed(why_the_link_failed(&error)),
        },
        None => match api::me().await {
            Ok(Some(Me::Participant {
                participant,
                conference_id,
                admitted,
            })) => JoinState::Joined {
                name: participant.name,
                conference_id,
                role: participant.role,
                waiting: !admitted,
            },
            Ok(_) => JoinState::NoLink,
            Err(error) => JoinState::Failed(error.to_string()),
        },
    }
}

/// The message for a link that did not work. The server's own words come
/// first, because it knows whether the link expired or was withdrawn.
fn why_the_link_failed(error: &ApiError) -> String {
    match error {
        ApiError::Refused {
            message: Some(message),
            ..
        } => message.clone(),
        ApiError::Refused {
            status: 400..=499, ..
        } => "This link does not work. It may have expired, or the chair may have withdrawn it."
            .to_owned(),
        ApiError::Unreachable => {
            format!("{error} To try again, open the link in your invitation again.")
        }
        other => other.to_string(),
    }
}

/// The welcome for someone who has joined.
#[component]
fn Welcome(
    /// The person's name, as the chair entered it.
    name: String,
    /// The conference the person has joined.
    conference_id: ConferenceId,
    /// Their role: the family go to the safety scale page, everyone else to the board.
    role: Option<Role>,
    /// True while waiting in the lobby for the chair to let them in.
    waiting: bool,
) -> impl IntoView {
    let home = crate::home_of(conference_id, role);
    let to_the_board = home == format!("/conference/{conference_id}");
    view! {
        <div role="status">
            <p class="lede">"Welcome, " {name} ". You have joined the conference."</p>
        </div>
        {if waiting {
            view! {
                <p>
                    "The chair will let you in soon. You can keep this page open while you wait."
                </p>
            }
                .into_any()
        } else {
            if to_the_board {
                view! {
                    <p>"The board shows what everyone has shared, and changes as the meeting goes on."</p>
                    <p><a class="button" href=home>"Open the board"</a></p>
                }
                    .into_any()
            } else {
                view! {
                    <p>
                        "During the meeting the chair will ask everyone how safe they think things are now, "
                        "from 0 to 10. You will give your answer on this phone."
                    </p>
                    <p><a class="button" href=home>"Continue"</a></p>
                }
                    .into_any()
            }
        }}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_reason_is_shown_as_it_is() {
        let error = ApiError::Refused {
            status: 410,
            message: Some("This link has expired.".into()),
        };
        assert_eq!(why_the_link_failed(&error), "This link has expired.");
    }

    #[test]
    fn a_refusal_without_a_reason_still_explains() {
        let error = ApiError::Refused {
            status: 404,
            message: None,
        };
        assert!(why_the_link_failed(&error).contains("may have expired"));
    }
}
