//! The live board of one conference (`/conference/{id}`).
//!
//! The page asks the server who the visitor is in this conference, then keeps a
//! live copy of the conference's document ([`Live`]) and draws the board from it
//! after every change. People whose role lets them write (the chair, the
//! minute-taker, professionals for their own items) get the controls to add,
//! change, move and delete items; everyone else sees the board in plain words.
//! The chair also gets the tools to run the meeting ([`crate::chair`]).

pub(crate) mod context;
mod item;
pub mod read;

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_shared::doc::{Board, NewItem, SaidBy};
use roundtable_shared::model::Role;
use roundtable_shared::permissions;

use crate::api::{self, ApiError};
use crate::live::{Connection, Live, saving_words};
use crate::set_page_title;
use context::{BoardContext, new_item_id, short};
use read::Snapshot;

/// What the page is showing.
#[derive(Debug, Clone, PartialEq)]
enum PageState {
    Loading,
    /// Waiting in the lobby for the chair to let you in.
    Waiting,
    Ready(api::Conference),
    Failed(String),
}

/// The live board of the conference `conference_id`.
#[component]
pub fn BoardPage(conference_id: String) -> impl IntoView {
    set_page_title("Your conference");
    let (state, set_state) = signal(PageState::Loading);
    let id = conference_id.clone();
    spawn_local(async move {
        set_state.set(match api::conference(&id).await {
            Ok(conference) => PageState::Ready(conference),
            Err(ApiError::Refused {
                status: 403,
                message: Some(message),
            }) if message.starts_with("please wait") => PageState::Waiting,
            Err(error) if error.is_unauthorised() => PageState::Failed(
                "This browser is not signed in to this conference. Please open your \
                 personal link again, or ask the chair for a new one."
                    .to_owned(),
            ),
            Err(error) => PageState::Failed(error.to_string()),
        });
    });

    move || {
        match state.get() {
        PageState::Loading => view! {
            <main id="main">
                <p role="status">"Opening your conference…"</p>
            </main>
        }
        .into_any(),
        PageState::Waiting => {
            match conference_id.parse() {
                Ok(conference_id) => {
                    view! { <roundtable_phone::lobby::Waiting conference_id/> }.into_any()
                }
                Err(_) => view! { <main id="main"><p class="problem">"There is no such conference."</p></main> }.into_any(),
            }
        }
        PageState::Failed(reason) => view! {
            <main id="main">
                <h1>"Your conference"</h1>
                <div role="alert">
                    <p class="problem">{reason}</p>
                </div>
            </main>
        }
        .into_any(),
        PageState::Ready(conference) => view! { <LiveBoard conference/> }.into_any(),
    }
    }
}

/// The board once we know who you are.
#[component]
fn LiveBoard(conference: api::Conference) -> impl IntoView {
    let role = conference.you.role;
    let me = conference.you.id.to_string();
    let conference = conference.conference;
    let live = Live::connect(
        &conference.id.to_string(),
        &me,
        permissions::adds_items(role),
    );
    let signals = live.signals();
    let live = StoredValue::new_local(live);
    let snapshot = Memo::new(move |_| {
        signals.version.track();
        live.with_value(|live| live.read(|txn| Snapshot::read(txn)))
    });
    let context = BoardContext {
        live,
        signals,
        snapshot,
        me,
        role,
        open_item: RwSignal::new(None),
        focus_next: RwSignal::new(None),
    };
    provide_context(context.clone());

    // Moving an item redraws it somewhere else: give focus back to the control
    // that was used, once the board has been drawn again.
    let focus_next = context.focus_next;
    Effect::new(move |_| {
        snapshot.track();
        if let Some(id) = focus_next.get() {
            set_timeout(
                move || {
                    let element = document().get_element_by_id(&id).and_then(|e| {
                        wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok()
                    });
                    if let Some(element) = element {
                        let _ = element.focus();
                    }
                },
                std::time::Duration::ZERO,
            );
            focus_next.set(None);
        }
    });
    // Tell everyone which item this screen is editing.
    let open_item = context.open_item;
    Effect::new(move |_| {
        let item = open_item.get();
        live.with_value(|live| live.set_editing(item));
    });

    let title = Memo::new(move |_| {
        snapshot
            .with(|s| s.title.clone())
            .unwrap_or_else(|| conference.title.clone())
    });
    Effect::new(move |_| set_page_title(&title.get()));
    let is_chair = role == Role::Chair;
    let conference_id = conference.id.to_string();
    let room_code = roundtable_shared::api::spaced_room_code(&conference.room_code);
    let writes = permissions::adds_items(role);

    view! {
        <main id="main" class="board-page">
            <h1>{title}</h1>
            <div class="status-bar">
                <p role="status" aria-live="polite" class=move || signals.connection.get().class()>
                    {move || signals.connection.get().words()}
                </p>
                {writes
                    .then(|| {
                        view! {
                            <p role="status" aria-live="polite" class="saving">
                                {move || saving_words(signals.saving.get())}
                            </p>
                        }
                    })}
            </div>
            {move || {
                signals
                    .refused
                    .get()
                    .map(|reason| {
                        view! {
                            <div role="alert" class="alert-region">
                                <p class="problem">
                                    "Your last change was not kept: " {reason} ". "
                                    "The board now shows what everyone else sees."
                                </p>
                            </div>
                        }
                    })
            }}
            {move || {
                match signals.connection.get() {
                    Connection::Removed => Some(view! {
                        <p>
                            "If you think this is a mistake, speak to the chair of the conference "
                            "or your social worker."
                        </p>
                    }.into_any()),
                    Connection::SessionEnded => Some(view! {
                        <p>
                            "Anything not saved yet is kept on this device. Open your link again, "
                            "or sign in, and it will be sent."
                        </p>
                    }.into_any()),
                    _ => None,
                }
            }}
            <p class="phase">
                "Now: "
                <strong>{move || snapshot.with(|s| s.phase.map(|p| p.label()).unwrap_or(""))}</strong>
            </p>
            {is_chair.then(|| view! { <crate::chair::ChairTools conference_id=conference_id.clone() room_code=room_code.clone()/> })}
            {(!writes)
                .then(|| {
                    view! {
                        <p class="lede">
                            "This is the board the chair writes on during the meeting. "
                            "It changes as people speak."
                        </p>
                    }
                })}
            <crate::scale::ScalePanel conference_id=conference_id.clone()/>
            <div class="headings">
                <For
                    each=move || snapshot.with(|s| s.headings.clone())
                    key=|heading| heading.key.clone()
                    let:heading
                >
                    <HeadingColumn key=heading.key title=heading.title/>
                </For>
            </div>
            <crate::plan::PlanPanel/>
            <crate::decision::DecisionPanel/>
            <WhoIsHere/>
        </main>
    }
}

/// One heading of the board with its items, and a way to add one.
#[component]
fn HeadingColumn(key: String, title: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let heading_id = format!("heading-{key}");
    let items_key = key.clone();
    let ids = move || snapshot.with(|s| s.ids_under(&items_key));
    let empty_key = key.clone();
    let empty = move || snapshot.with(|s| s.ids_under(&empty_key).is_empty());
    let adds = permissions::adds_items(context.role);
    let labelled_by = heading_id.clone();
    view! {
        <section class="heading" aria-labelledby=labelled_by>
            <h2 id=heading_id>{title.clone()}</h2>
            {move || empty().then(|| view! { <p class="empty">"Nothing here yet."</p> })}
            <ul class="items">
                <For each=ids key=|id| id.clone() let:id>
                    <item::ItemRow id/>
                </For>
            </ul>
            {adds.then(|| view! { <AddItem heading=key.clone() title=title.clone()/> })}
        </section>
    }
}

/// The form under a heading that adds an item to it.
#[component]
fn AddItem(heading: String, title: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let text = RwSignal::new(String::new());
    let field_id = format!("add-{heading}");
    let add = {
        let context = context.clone();
        move || {
            let words = text.get_untracked().trim().to_owned();
            if words.is_empty() {
                return;
            }
            let Ok(author) = context.me.parse() else {
                return;
            };
            // A professional's own words are theirs; the chair and the
            // minute-taker write down what others say and record who it was.
            let said_by =
                (context.role == Role::Professional).then_some(SaidBy::Participant(author));
            let id = new_item_id();
            context.edit(|txn| {
                Board::in_txn(txn).add_item(
                    txn,
                    NewItem {
                        id: &id,
                        heading: &heading,
                        text: &words,
                        author,
                        said_by,
                        children: &[],
                    },
                );
            });
            text.set(String::new());
        }
    };
    let on_submit = {
        let add = add.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            add();
        }
    };
    // Enter adds the item, as in a chat; Shift+Enter starts a new line.
    let on_keydown = move |event: web_sys::KeyboardEvent| {
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            add();
        }
    };
    view! {
        <form class="add-item" on:submit=on_submit>
            <label for=field_id.clone()>
                "Add to “" {title} "”"
            </label>
            <textarea id=field_id rows="2" bind:value=text on:keydown=on_keydown></textarea>
            <button type="submit">"Add"</button>
        </form>
    }
}

/// Who is connected, and what they are editing.
#[component]
fn WhoIsHere() -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let people = context.signals.people;
    let snapshot = context.snapshot;
    view! {
        <section class="who" aria-labelledby="who-heading">
            <h2 id="who-heading">"Who is here"</h2>
            {move || {
                let people = people.get();
                if people.is_empty() {
                    return view! { <p class="empty">"Nobody else is connected yet."</p> }.into_any();
                }
                view! {
                    <ul class="present">
                        {people
                            .into_iter()
                            .map(|person| {
                                let role = person.role_words().to_owned();
                                let editing = person.editing.as_ref().and_then(|item| {
                                    snapshot.with(|s| s.item(item).map(|i| short(&i.text)))
                                });
                                view! {
                                    <li>
                                        {person.name}
                                        {(!role.is_empty()).then(|| format!(" ({role})"))}
                                        {editing.map(|text| format!(": editing “{text}”"))}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </section>
    }
}
