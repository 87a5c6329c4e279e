//! The chair's record of a conference, built from `GET /api/conferences/{id}/record`
//! (the same JSON a council's case management system takes, `docs/record-export.md`):
//! - `/conference/{id}/record`: the whole record, to read on screen or print on A4
//!   (page numbers and the confidentiality statement come from the print styles);
//! - `/conference/{id}/letter`: a draft letter to the family in plain English;
//! - `/conference/{id}/audit`: who did what, and when.

use leptos::{prelude::*, task::spawn_local};
use roundtable_shared::api::{AuditLog, PersonRef, RecordExport};
use roundtable_shared::record::Attendance;
use roundtable_shared::{Decision, Role};
use serde::de::DeserializeOwned;

use crate::decision::date_words;
use crate::set_page_title;

const CONFIDENTIAL: &str = "Confidential. This record is for the people who took part in the \
conference and the agencies working with the family. Do not share it with anyone else.";

async fn fetch<T: DeserializeOwned>(path: String) -> Result<T, String> {
    let text = crate::api::send("GET", &path, None)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|_| "The record could not be read.".to_owned())
}

/// The day of an RFC 3339 date and time, in words.
fn day(rfc3339: &str) -> String {
    date_words(rfc3339.get(..10).unwrap_or(rfc3339))
}

/// Loads a JSON document for a page and shows it with `show`.
fn page<T: DeserializeOwned + Clone + Send + Sync + 'static>(
    title: &'static str,
    path: String,
    show: impl Fn(T) -> AnyView + Send + Sync + 'static,
) -> impl IntoView {
    set_page_title(title);
    let (state, set_state) = signal(None::<Result<T, String>>);
    spawn_local(async move { set_state.set(Some(fetch(path).await)) });
    move || {
        match state.get() {
        None => view! { <main id="main"><p role="status">"Opening…"</p></main> }.into_any(),
        Some(Err(why)) => view! {
            <main id="main"><h1>{title}</h1><div role="alert"><p class="problem">{why}</p></div></main>
        }
        .into_any(),
        Some(Ok(value)) => show(value),
    }
    }
}

/// The categories of a plan, in lower case, joined with `joiner`.
fn categories_words(decision: &Decision, joiner: &str) -> String {
    match decision {
        Decision::ChildProtectionPlan { categories } => categories
            .as_slice()
            .iter()
            .map(|c| c.label().to_lowercase())
            .collect::<Vec<_>>()
            .join(joiner),
        _ => String::new(),
    }
}

fn outcome_words(decision: Option<&Decision>) -> String {
    match decision {
        Some(d @ Decision::ChildProtectionPlan { .. }) => {
            format!("Child protection plan: {}", categories_words(d, ", "))
        }
        Some(Decision::ChildInNeedPlan) => "Child in need plan".to_owned(),
        Some(Decision::NoPlan) => "No plan".to_owned(),
        None => "Not decided yet".to_owned(),
    }
}

fn attendance_words(attendance: Option<Attendance>) -> &'static str {
    match attendance {
        Some(Attendance::Present) => "Present",
        Some(Attendance::Apologies) => "Apologies",
        Some(Attendance::Absent) => "Absent",
        None => "",
    }
}

/// The whole record, for the screen and for printing.
#[component]
pub fn RecordPage(conference_id: String) -> impl IntoView {
    page(
        "Record of the conference",
        format!("/api/conferences/{conference_id}/record"),
        |record: RecordExport| {
            let conference = record.conference;
            view! {
                <main id="main" class="record">
                    <p class="confidential">{CONFIDENTIAL}</p>
                    <h1>{format!("Record of the conference: {}", conference.title)}</h1>
                    <p>{format!("Held on {}.", day(&conference.scheduled_start))}
                        {conference.closed_at.map(|closed| format!(" Closed on {}.", day(&closed)))}</p>
                    <h2>"Children"</h2>
                    <ul>{record.children.into_iter().map(|c| view! { <li>{c.name}</li> }).collect_view()}</ul>
                    <h2>"Who took part"</h2>
                    <table>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"Agency"</th><th scope="col">"Attendance"</th></tr></thead>
                        <tbody>{record.participants.into_iter().filter(|p| p.role != Some(Role::RoomDisplay)).map(|p| view! {
                            <tr><td>{p.name}</td><td>{p.role.map(|r| r.as_str().replace('_', " "))}</td><td>{p.agency}</td>
                                <td>{attendance_words(p.attendance)}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                    <h2>"What was shared"</h2>
                    {record.board.into_iter().map(|heading| view! {
                        <h3>{heading.title}</h3>
                        <ul>{heading.items.into_iter().map(|item| view! {
                            <li>{item.text}
                                {item.said_by.filter(|s| !s.is_empty()).map(|s| format!(" (said by {s})"))}</li>
                        }).collect_view()}</ul>
                    }).collect_view()}
                    <h2>"Safety scales"</h2>
                    {record.safety_scales.into_iter().map(|scale| view! {
                        <h3>{format!("{}. {}", scale.number, scale.about)}</h3>
                        {match scale.results {
                            Some(results) => view! {
                                <ul>{results.into_iter().map(|r| view! {
                                    <li>{format!("{}: {}", r.name, r.score.get())}
                                        {r.reason.filter(|why| !why.is_empty()).map(|why| format!(" – “{why}”"))}</li>
                                }).collect_view()}</ul>
                            }.into_any(),
                            None => view! { <p>"The scores were not shown."</p> }.into_any(),
                        }}
                    }).collect_view()}
                    <h2>"The plan"</h2>
                    {Some(record.plan).map(|plan| view! {
                        <h3>"Danger statements and safety goals"</h3>
                        <ol>{plan.dangers.into_iter().map(|d| view! {
                            <li><p>{d.statement}</p><p>"Safety goal: " {d.safety_goal}</p></li>
                        }).collect_view()}</ol>
                        <h3>"Actions"</h3>
                        <table>
                            <thead><tr><th scope="col">"What"</th><th scope="col">"Who"</th><th scope="col">"By"</th><th scope="col">"How we will know"</th></tr></thead>
                            <tbody>{plan.actions.into_iter().map(|a| view! {
                                <tr><td>{a.what}</td><td>{a.who}</td><td>{date_words(a.by.as_deref().unwrap_or(""))}</td><td>{a.how_we_will_know}</td></tr>
                            }).collect_view()}</tbody>
                        </table>
                        <h3>"Contingency plan"</h3>
                        <p class="plan-text">{plan.contingency}</p>
                        <h3>"Bottom lines"</h3>
                        <p class="plan-text">{plan.bottom_lines}</p>
                    })}
                    <h2>"Decisions"</h2>
                    {record.decisions.into_iter().map(|d| {
                        let dissent = d.dissent;
                        view! {
                            <h3>{d.name}</h3>
                            <p><strong>{outcome_words(d.decision.as_ref())}</strong></p>
                            {d.lead_social_worker.filter(|l| !l.is_empty()).map(|lead| view! { <p>"Lead social worker: " {lead}</p> })}
                            <ul>{d.agency_views.into_iter().map(|v| view! { <li>{format!("{}: {}", v.agency, v.view)}</li> }).collect_view()}</ul>
                            {(!dissent.is_empty()).then(|| view! {
                                <p>"Disagreed:"</p>
                                <ul>{dissent.into_iter().map(|v| view! { <li>{format!("{}: {}", v.who, v.why)}</li> }).collect_view()}</ul>
                            })}
                        }
                    }).collect_view()}
                    <h2>"Next meetings"</h2>
                    {Some(record.next_meetings).map(|n| view! {
                        <p>"First core group by " {date_words(&n.core_group_by)}</p>
                        <p>"Review conference by " {date_words(&n.review_by)}</p>
                    })}
                    <p class="confidential print-only">{CONFIDENTIAL}</p>
                </main>
            }
            .into_any()
        },
    )
}

/// A draft letter to the family, in plain words.
#[component]
pub fn LetterPage(conference_id: String) -> impl IntoView {
    page(
        "Letter to the family",
        format!("/api/conferences/{conference_id}/record"),
        |record: RecordExport| {
            let conference = record.conference;
            let family: Vec<String> = record
                .participants
                .iter()
                .filter(|p| matches!(p.role, Some(Role::Parent | Role::Carer)))
                .map(|p| p.name.clone())
                .collect();
            let greeting = if family.is_empty() {
                "Dear parent or carer".to_owned()
            } else {
                format!("Dear {}", family.join(" and "))
            };
            let next = record.next_meetings;
            view! {
                <main id="main" class="record letter">
                    <p class="hint screen-only">"This is a draft. Check it, change what you need to, then send it within one working day."</p>
                    <h1>"About the child protection conference"</h1>
                    <p>{greeting}","</p>
                    <p>{format!("Thank you for coming to the child protection conference on {}. This letter tells you what was decided.", day(&conference.scheduled_start))}</p>
                    {record.decisions.into_iter().map(|d| {
                        let name = d.name;
                        let words = match &d.decision {
                            Some(decision @ Decision::ChildProtectionPlan { .. }) => format!(
                                "{name} will have a child protection plan. This means everyone agreed that {name} needs a plan to keep them safe, and we will all work with you on it. The plan is under the category of {}.",
                                categories_words(decision, " and ")
                            ),
                            Some(Decision::ChildInNeedPlan) => format!("{name} will have a child in need plan. This means {name} and your family will get help and support, but {name} does not need a child protection plan."),
                            _ => format!("{name} does not need a plan from the conference."),
                        };
                        view! { <p>{words}</p> }
                    }).collect_view()}
                    {(!next.core_group_by.is_empty()).then(|| view! {
                        <p>{format!("The first core group meeting will be by {}. This is a smaller meeting with you and the professionals, to make the plan work.", date_words(&next.core_group_by))}</p>
                        <p>{format!("The next conference will be by {}. It will look at how things are going.", date_words(&next.review_by))}</p>
                    })}
                    <p>"If you do not understand something in this letter, or you do not agree with what was decided, please talk to your social worker. You can also ask for help from an advocate."</p>
                    <p>"Yours sincerely,"</p>
                    <p>"Chair of the conference"</p>
                </main>
            }
            .into_any()
        },
    )
}

/// The audit log: every command and every change to the document, with who and when.
#[component]
pub fn AuditPage(conference_id: String) -> impl IntoView {
    page(
        "Audit log",
        format!("/api/conferences/{conference_id}/audit"),
        |log: AuditLog| {
            let who = |person: Option<PersonRef>| {
                person.map_or_else(|| "Roundtable".to_owned(), |p| p.name)
            };
            let changes = log.document_changes.len();
            view! {
                <main id="main" class="record">
                    <h1>"Audit log"</h1>
                    <h2>"What was done"</h2>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Details"</th></tr></thead>
                        <tbody>{log.events.into_iter().map(|e| view! {
                            <tr><td>{e.at}</td><td>{who(e.actor)}</td>
                                <td>{e.action.replace('_', " ")}</td><td>{e.detail.to_string()}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                    <h2>"Changes to the board and the plan"</h2>
                    <p>{format!("{changes} changes.")}
                        {log.truncated.then_some(" Only the latest are shown.")}</p>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Document"</th></tr></thead>
                        <tbody>{log.document_changes.into_iter().map(|c| view! {
                            <tr><td>{c.at}</td><td>{who(c.participant)}</td><td>{c.document.as_str()}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </main>
            }
            .into_any()
        },
    )
}
