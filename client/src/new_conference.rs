//! Setting up a conference (`/new`): the chair gives its title, kind, date and
//! time, the children, the headings and the people invited, and then gets each
//! person's personal link to send them.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_shared::headings::HeadingsTemplate;
use roundtable_shared::model::{ConferenceKind, Role};
use wasm_bindgen::JsValue;

use crate::api::{self, Created, NewChild, NewConference, NewParticipant};
use crate::chair::{LinkToCopy, roles_to_give};
use crate::set_page_title;

/// One child row of the form.
#[derive(Clone, Copy)]
struct ChildRow {
    key: usize,
    name: RwSignal<String>,
    date_of_birth: RwSignal<String>,
}

/// One invited person's row of the form.
#[derive(Clone, Copy)]
struct PersonRow {
    key: usize,
    name: RwSignal<String>,
    role: RwSignal<String>,
    agency: RwSignal<String>,
}

/// The date and time from the form's fields, in the browser's time zone, as
/// RFC 3339 (in UTC), or `None` if they are not a date and time.
fn start_time(date: &str, time: &str) -> Option<String> {
    if date.is_empty() || time.is_empty() {
        return None;
    }
    let local = js_sys::Date::new(&JsValue::from_str(&format!("{date}T{time}")));
    if local.get_time().is_nan() {
        return None;
    }
    local.to_iso_string().as_string()
}

fn template_label(template: HeadingsTemplate) -> &'static str {
    match template {
        HeadingsTemplate::FourHeadings => {
            "Our four headings: worries, complicating factors, what is working well, what needs to happen"
        }
        HeadingsTemplate::SignsOfSafety => {
            "Signs of Safety: worries, what is working well, what needs to happen, grey areas"
        }
        HeadingsTemplate::StrengtheningFamilies => {
            "Strengthening Families: danger and harm, complicating factors, strengths, safety, grey areas"
        }
    }
}

/// The form for a new conference.
#[component]
pub fn NewConferencePage() -> impl IntoView {
    set_page_title("New conference");
    let title = RwSignal::new(String::new());
    let kind = RwSignal::new(ConferenceKind::Initial);
    let date = RwSignal::new(String::new());
    let time = RwSignal::new("10:00".to_owned());
    let template = RwSignal::new(HeadingsTemplate::FourHeadings);
    // For a review: the conference it reviews, so its safety scales show beside the new.
    let previous = RwSignal::new(String::new());
    let earlier = LocalResource::new(|| async { api::conferences().await.unwrap_or_default() });
    let next_key = StoredValue::new(1usize);
    let new_key = move || {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        key
    };
    let children = RwSignal::new(vec![ChildRow {
        key: 0,
        name: RwSignal::new(String::new()),
        date_of_birth: RwSignal::new(String::new()),
    }]);
    let people = RwSignal::new(Vec::<PersonRow>::new());
    let (problem, set_problem) = signal(None::<String>);
    let (created, set_created) = signal(None::<Created>);
    let (busy, set_busy) = signal(false);

    let add_child = move |_| {
        children.update(|rows| {
            rows.push(ChildRow {
                key: new_key(),
                name: RwSignal::new(String::new()),
                date_of_birth: RwSignal::new(String::new()),
            })
        })
    };
    let add_person = move |_| {
        people.update(|rows| {
            rows.push(PersonRow {
                key: new_key(),
                name: RwSignal::new(String::new()),
                role: RwSignal::new(Role::Parent.as_str().to_owned()),
                agency: RwSignal::new(String::new()),
            })
        })
    };

    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let Some(scheduled_start) = start_time(&date.get_untracked(), &time.get_untracked()) else {
            set_problem.set(Some(
                "Enter the date and time of the conference.".to_owned(),
            ));
            return;
        };
        let new = NewConference {
            title: title.get_untracked().trim().to_owned(),
            kind: kind.get_untracked(),
            scheduled_start,
            children: children
                .get_untracked()
                .iter()
                .filter(|c| !c.name.get_untracked().trim().is_empty())
                .map(|c| NewChild {
                    name: c.name.get_untracked().trim().to_owned(),
                    date_of_birth: Some(c.date_of_birth.get_untracked()).filter(|d| !d.is_empty()),
                })
                .collect(),
            headings_template: template.get_untracked(),
            previous_conference: previous
                .get_untracked()
                .parse()
                .ok()
                .filter(|_| kind.get_untracked() == ConferenceKind::Review),
            participants: people
                .get_untracked()
                .iter()
                .filter(|p| !p.name.get_untracked().trim().is_empty())
                .map(|p| NewParticipant {
                    name: p.name.get_untracked().trim().to_owned(),
                    role: p.role.get_untracked(),
                    agency: Some(p.agency.get_untracked().trim().to_owned())
                        .filter(|a| !a.is_empty()),
                })
                .collect(),
        };
        if new.title.is_empty() {
            set_problem.set(Some("Enter a title for the conference.".to_owned()));
            return;
        }
        if new.children.is_empty() {
            set_problem.set(Some("Enter the name of at least one child.".to_owned()));
            return;
        }
        set_problem.set(None);
        set_busy.set(true);
        spawn_local(async move {
            match api::create_conference(&new).await {
                Ok(done) => {
                    set_page_title("Conference created");
                    set_created.set(Some(done));
                }
                Err(error) => set_problem.set(Some(error.to_string())),
            }
            set_busy.set(false);
        });
    };

    let form = move || {
        view! {
            <form on:submit=on_submit novalidate class="new-conference">
                <div class="field">
                    <label for="title">"Title"</label>
                    <p class="hint" id="title-hint">"Usually the family's name, for example “Taylor children”."</p>
                    <input id="title" type="text" maxlength="200" aria-describedby="title-hint" bind:value=title/>
                </div>
                <div class="field">
                    <label for="kind">"Kind of conference"</label>
                    <select id="kind" on:change=move |event| {
                        kind.set(ConferenceKind::parse(&event_target_value(&event)).unwrap_or(ConferenceKind::Initial))
                    }>
                        {ConferenceKind::ALL
                            .into_iter()
                            .map(|k| view! { <option value=k.as_str() selected=k == ConferenceKind::Initial>{k.label()}</option> })
                            .collect_view()}
                    </select>
                </div>
                {move || (kind.get() == ConferenceKind::Review).then(|| view! {
                    <div class="field">
                        <label for="previous">"The conference this one reviews"</label>
                        <p class="hint" id="previous-hint">"Its safety scale scores are shown beside the new ones."</p>
                        <select id="previous" aria-describedby="previous-hint"
                            on:change=move |event| previous.set(event_target_value(&event))>
                            <option value="">"None"</option>
                            {move || earlier.get().map(|list| list.into_iter().map(|c| {
                                let words = format!("{} ({})", c.title, c.scheduled_start.get(..10).unwrap_or(""));
                                let selected = previous.get_untracked() == c.id.to_string();
                                view! { <option value=c.id.to_string() selected=selected>{words}</option> }
                            }).collect_view())}
                        </select>
                    </div>
                })}
                <div class="field">
                    <label for="date">"Date"</label>
                    <input id="date" type="date" bind:value=date/>
                </div>
                <div class="field">
                    <label for="time">"Start time"</label>
                    <input id="time" type="time" bind:value=time/>
                </div>
                <fieldset>
                    <legend>"Headings on the board"</legend>
                    {HeadingsTemplate::ALL
                        .into_iter()
                        .map(|t| {
                            let id = format!("template-{}", t.as_str());
                            view! {
                                <div class="check">
                                    <input
                                        type="radio"
                                        name="template"
                                        id=id.clone()
                                        value=t.as_str()
                                        checked=t == HeadingsTemplate::FourHeadings
                                        on:change=move |_| template.set(t)
                                    />
                                    <label for=id>{template_label(t)}</label>
                                </div>
                            }
                        })
                        .collect_view()}
                </fieldset>
                <fieldset>
                    <legend>"The children"</legend>
                    <For each=move || children.get() key=|row| row.key let:row>
                        <div class="row">
                            <div class="field">
                                <label for=format!("child-{}-name", row.key)>"Child's name"</label>
                                <input id=format!("child-{}-name", row.key) type="text" maxlength="100" bind:value=row.name/>
                            </div>
                            <div class="field">
                                <label for=format!("child-{}-birth", row.key)>"Date of birth (leave empty for an unborn baby)"</label>
                                <input id=format!("child-{}-birth", row.key) type="date" bind:value=row.date_of_birth/>
                            </div>
                        </div>
                    </For>
                    <button type="button" class="secondary" on:click=add_child>"Add another child"</button>
                </fieldset>
                <fieldset>
                    <legend>"People to invite"</legend>
                    <p class="hint">"Each person gets a personal link. You can invite more people later."</p>
                    <For each=move || people.get() key=|row| row.key let:row>
                        <div class="row">
                            <div class="field">
                                <label for=format!("person-{}-name", row.key)>"Name"</label>
                                <input id=format!("person-{}-name", row.key) type="text" maxlength="100" bind:value=row.name/>
                            </div>
                            <div class="field">
                                <label for=format!("person-{}-role", row.key)>"Role"</label>
                                <select id=format!("person-{}-role", row.key) on:change=move |event| row.role.set(event_target_value(&event))>
                                    {roles_to_give()
                                        .map(|r| view! { <option value=r.as_str() selected=r == Role::Parent>{r.label()}</option> })
                                        .collect_view()}
                                </select>
                            </div>
                            <div class="field">
                                <label for=format!("person-{}-agency", row.key)>"Agency (for professionals)"</label>
                                <input id=format!("person-{}-agency", row.key) type="text" maxlength="100" bind:value=row.agency/>
                            </div>
                        </div>
                    </For>
                    <button type="button" class="secondary" on:click=add_person>"Add a person"</button>
                </fieldset>
                <div role="alert" class="alert-region">
                    {move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}
                </div>
                <button type="submit" aria-disabled=move || busy.get().to_string()>"Create the conference"</button>
            </form>
        }
    };

    view! {
        <main id="main">
            {move || match created.get() {
                None => view! {
                    <h1>"New conference"</h1>
                    {form()}
                    <p><a href="/">"Back to your conferences"</a></p>
                }
                .into_any(),
                Some(created) => view! { <Created created/> }.into_any(),
            }}
        </main>
    }
}

/// After creating: the links to send, shown only now.
#[component]
fn Created(created: Created) -> impl IntoView {
    let board = format!("/conference/{}", created.conference.id);
    view! {
        <h1 tabindex="-1">"Conference created"</h1>
        <p class="lede">
            {created.conference.title.clone()} ". Room code: "
            <span class="room-code">{created.conference.room_code_shown()}</span>
        </p>
        {if created.participants.is_empty() {
            view! { <p>"You have not invited anyone yet. You can invite people from the board."</p> }.into_any()
        } else {
            view! {
                <h2>"Personal links"</h2>
                <p>
                    "Send each person their own link. This is the only time the links are shown; "
                    "you can make a new link for someone from the board."
                </p>
                {created
                    .participants
                    .into_iter()
                    .map(|invited| view! { <LinkToCopy invited/> })
                    .collect_view()}
            }
                .into_any()
        }}
        <p><a href=board class="button">"Open the board"</a></p>
    }
}
