//! The home page (`/`): what Roundtable is, the chair's sign-in form, and
//! once signed in, the chair's conferences.

use leptos::{ev::SubmitEvent, html, prelude::*, task::spawn_local};

use crate::api::{self, ChairView as Chair, ConferenceSummary, Me};
use crate::{set_page_title, words};

/// Who this browser belongs to, as far as the home page knows.
#[derive(Debug, Clone, PartialEq)]
enum Session {
    /// Asking the server (`GET /api/me`).
    Checking,
    /// Nobody is signed in. `notice` is a sentence to show above the form,
    /// such as "You have signed out."
    SignedOut { notice: Option<String> },
    /// A chair is signed in. `just_signed_in` moves keyboard focus to the
    /// list, so a screen reader user hears that signing in worked.
    Chair { chair: Chair, just_signed_in: bool },
    /// Someone who joined a conference by link is using this browser.
    Participant { name: String },
}

/// The home page.
#[component]
pub fn LandingPage() -> impl IntoView {
    set_page_title("Home");
    let (session, set_session) = signal(Session::Checking);

    spawn_local(async move {
        let found = match api::me().await {
            Ok(Some(Me::Chair(chair))) => Session::Chair {
                chair,
                just_signed_in: false,
            },
            Ok(Some(Me::Participant { participant, .. })) => Session::Participant {
                name: participant.name,
            },
            Ok(None) => Session::SignedOut { notice: None },
            // The form still works if the server comes back, so show it with
            // the reason we could not check.
            Err(error) => Session::SignedOut {
                notice: Some(error.to_string()),
            },
        };
        set_session.set(found);
    });

    // A signed-in chair knows what Roundtable is: show their list first.
    let chair_signed_in = Memo::new(move |_| matches!(session.get(), Session::Chair { .. }));

    view! {
        <main id="main">
            <h1>"Roundtable"</h1>
            {move || (!chair_signed_in.get()).then(Introduction)}
            {move || match session.get() {
                Session::Checking => {
                    view! { <p role="status">"Checking whether you are signed in…"</p> }
                        .into_any()
                }
                Session::SignedOut { notice } => {
                    view! { <SignInForm notice set_session/> }.into_any()
                }
                Session::Chair { chair, just_signed_in } => {
                    view! { <ChairHome chair focus_heading=just_signed_in set_session/> }
                        .into_any()
                }
                Session::Participant { name } => {
                    view! { <ParticipantHome name/> }.into_any()
                }
            }}
        </main>
    }
}

/// What Roundtable is, for someone who has not used it before.
#[component]
fn Introduction() -> impl IntoView {
    view! {
        <p class="lede">"Roundtable is a shared whiteboard for child protection conferences."</p>
        <p>
            "During the meeting the chair writes down what people say, under headings "
            "everyone can see: on the wall of the meeting room, and on the screens of "
            "people joining from somewhere else. Near the end, everyone gives their "
            "safety score from 0 to 10 on their own phone."
        </p>
        <p>
            "If you have been invited to a conference, you do not need to sign in here. "
            "Use the personal link the chair sent you."
        </p>
    }
}

/// The chair's sign-in form.
///
/// The form does its own checks (`novalidate`) so every problem appears in
/// the same place, in words, and is announced by screen readers.
#[component]
fn SignInForm(
    /// A sentence to show above the form, if any.
    notice: Option<String>,
    /// Set to `Session::Chair` once signing in works.
    set_session: WriteSignal<Session>,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let (busy, set_busy) = signal(false);

    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let email_given = email.get_untracked().trim().to_owned();
        let password_given = password.get_untracked();
        if email_given.is_empty() || password_given.is_empty() {
            set_problem.set(Some(
                "Enter your email address and your password.".to_owned(),
            ));
            return;
        }
        set_problem.set(None);
        set_busy.set(true);
        spawn_local(async move {
            let outcome = match api::sign_in(&email_given, &password_given).await {
                Ok(()) => api::me().await,
                Err(error) => Err(error),
            };
            set_busy.set(false);
            match outcome {
                Ok(Some(Me::Chair(chair))) => set_session.set(Session::Chair {
                    chair,
                    just_signed_in: true,
                }),
                Ok(_) => set_problem.set(Some(
                    "You signed in, but Roundtable could not find your chair's account. \
                     Please reload the page and try again."
                        .to_owned(),
                )),
                Err(error) => {
                    password.set(String::new());
                    set_problem.set(Some(error.to_string()));
                }
            }
        });
    };

    view! {
        <section aria-labelledby="sign-in-heading">
            <h2 id="sign-in-heading">"Chairs: sign in"</h2>
            {notice.map(|notice| view! { <p class="notice" role="status">{notice}</p> })}
            <form on:submit=on_submit novalidate>
                <div class="field">
                    <label for="email">"Email address"</label>
                    <input
                        id="email"
                        name="email"
                        type="email"
                        autocomplete="username"
                        spellcheck="false"
                        required
                        bind:value=email
                    />
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                        bind:value=password
                    />
                </div>
                <div role="alert" class="alert-region">
                    {move || problem.get().map(|problem| view! { <p class="problem">{problem}</p> })}
                </div>
                <button type="submit" aria-disabled=move || busy.get().to_string()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </section>
    }
}

/// What the conference list is showing.
#[derive(Debug, Clone, PartialEq)]
enum ConferenceList {
    Loading,
    Loaded(Vec<ConferenceSummary>),
    Failed(String),
}

/// The signed-in chair's page: their conferences and a way to sign out.
#[component]
fn ChairHome(
    /// The chair who is signed in.
    chair: Chair,
    /// Move keyboard focus to the heading when the page appears.
    focus_heading: bool,
    /// Set to `Session::SignedOut` after signing out.
    set_session: WriteSignal<Session>,
) -> impl IntoView {
    set_page_title("Your conferences");
    let (list, set_list) = signal(ConferenceList::Loading);
    let (problem, set_problem) = signal(None::<String>);
    let heading = NodeRef::<html::H2>::new();
    if focus_heading {
        heading.on_load(|heading| {
            let _ = heading.focus();
        });
    }

    spawn_local(async move {
        set_list.set(match api::conferences().await {
            Ok(conferences) => ConferenceList::Loaded(conferences),
            Err(error) => ConferenceList::Failed(error.to_string()),
        });
    });

    let sign_out = move |_| {
        spawn_local(async move {
            match api::sign_out().await {
                Ok(()) => {
                    set_page_title("Home");
                    set_session.set(Session::SignedOut {
                        notice: Some("You have signed out.".to_owned()),
                    });
                }
                Err(error) => set_problem.set(Some(error.to_string())),
            }
        });
    };

    view! {
        <section aria-labelledby="conferences-heading">
            <h2 id="conferences-heading" tabindex="-1" node_ref=heading>
                "Your conferences"
            </h2>
            <p>
                "You are signed in as " <strong>{chair.name}</strong> " (" {chair.email} ")."
            </p>
            <p>
                <a href="/new" class="button">"Set up a new conference"</a>
            </p>
            {move || match list.get() {
                ConferenceList::Loading => {
                    view! { <p role="status">"Loading your conferences…"</p> }.into_any()
                }
                ConferenceList::Failed(reason) => {
                    view! {
                        <p class="problem" role="alert">
                            "Your conferences could not be loaded. " {reason}
                        </p>
                    }
                        .into_any()
                }
                ConferenceList::Loaded(conferences) if conferences.is_empty() => {
                    view! { <p>"You have no conferences yet."</p> }.into_any()
                }
                ConferenceList::Loaded(conferences) => {
                    view! {
                        <ul class="conferences">
                            {conferences
                                .into_iter()
                                .map(|conference| view! { <ConferenceItem conference/> })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }
            }}
            <div role="alert" class="alert-region">
                {move || problem.get().map(|problem| view! { <p class="problem">{problem}</p> })}
            </div>
            <button type="button" class="secondary" on:click=sign_out>
                "Sign out"
            </button>
        </section>
    }
}

/// One conference in the chair's list.
#[component]
fn ConferenceItem(conference: ConferenceSummary) -> impl IntoView {
    let when = words::date_and_time(&conference.scheduled_start);
    let title = conference.title.clone();
    view! {
        <li class="conference">
            <h3>{conference.title}</h3>
            <p>
                {conference.kind.label()} ", "
                <time datetime=conference.scheduled_start>{when}</time>
            </p>
            <p>"Room code: " <span class="room-code">{roundtable_shared::api::spaced_room_code(&conference.room_code)}</span></p>
            <p>
                <a href=format!("/conference/{}", conference.id)>
                    "Open the board"
                    <span class="visually-hidden">" for " {title}</span>
                </a>
            </p>
        </li>
    }
}

/// The home page for someone who joined a conference by link.
#[component]
fn ParticipantHome(name: String) -> impl IntoView {
    view! {
        <section aria-labelledby="joined-heading">
            <h2 id="joined-heading">"You have joined a conference"</h2>
            <p>"You are signed in as " <strong>{name}</strong> "."</p>
            <p>
                <a href="/join">"Go to your conference"</a>
            </p>
        </section>
    }
}
