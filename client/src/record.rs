//! The chair's record of a conference, built from `GET /api/conferences/{id}/record`
//! (the same JSON a council's case management system takes, `docs/record-export.md`):
//! - `/conference/{id}/record`: the whole record, to read on screen or print on A4
//!   (page numbers and the confidentiality statement come from the print styles);
//! - `/conference/{id}/letter`: a draft letter to the family in plain English;
//! - `/conference/{id}/audit`: who did what, and when.

use leptos::{prelude::*, task::spawn_local};
use serde_json::Value;

use crate::decision::date_words;
use crate::set_page_title;

const CONFIDENTIAL: &str = "Confidential. This record is for the people who took part in the \
conference and the agencies working with the family. Do not share it with anyone else.";

async fn fetch_json(path: String) -> Result<Value, String> {
    let text = crate::api::send("GET", &path, None)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|_| "The record could not be read.".to_owned())
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The day of an RFC 3339 date and time, in words.
fn day(rfc3339: &str) -> String {
    date_words(rfc3339.get(..10).unwrap_or(rfc3339))
}

/// Loads a JSON document for a page and shows it with `show`.
fn page(
    title: &'static str,
    path: String,
    show: impl Fn(Value) -> AnyView + Send + Sync + 'static,
) -> impl IntoView {
    set_page_title(title);
    let (state, set_state) = signal(None::<Result<Value, String>>);
    spawn_local(async move { set_state.set(Some(fetch_json(path).await)) });
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

fn outcome_words(decision: &Value) -> String {
    let categories: Vec<String> = list(decision, "categories")
        .iter()
        .filter_map(Value::as_str)
        .map(|c| c.replace('_', " "))
        .collect();
    match decision.get("outcome").and_then(Value::as_str) {
        Some("child_protection_plan") => {
            format!("Child protection plan: {}", categories.join(", "))
        }
        Some("child_in_need_plan") => "Child in need plan".to_owned(),
        Some("no_plan") => "No plan".to_owned(),
        _ => "Not decided yet".to_owned(),
    }
}

/// The whole record, for the screen and for printing.
#[component]
pub fn RecordPage(conference_id: String) -> impl IntoView {
    page(
        "Record of the conference",
        format!("/api/conferences/{conference_id}/record"),
        |record| {
            let conference = record.get("conference").cloned().unwrap_or_default();
            view! {
                <main id="main" class="record">
                    <p class="confidential">{CONFIDENTIAL}</p>
                    <h1>{format!("Record of the conference: {}", text(&conference, "title"))}</h1>
                    <p>{format!("Held on {}.", day(&text(&conference, "scheduled_start")))}
                        {(!text(&conference, "closed_at").is_empty()).then(|| format!(" Closed on {}.", day(&text(&conference, "closed_at"))))}</p>
                    <h2>"Children"</h2>
                    <ul>{list(&record, "children").iter().map(|c| view! { <li>{text(c, "name")}</li> }).collect_view()}</ul>
                    <h2>"Who took part"</h2>
                    <table>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"Agency"</th><th scope="col">"Attendance"</th></tr></thead>
                        <tbody>{list(&record, "participants").iter().filter(|p| p.get("role").and_then(Value::as_str) != Some("room_display")).map(|p| view! {
                            <tr><td>{text(p, "name")}</td><td>{text(p, "role").replace('_', " ")}</td><td>{text(p, "agency")}</td>
                                <td>{match text(p, "attendance").as_str() { "present" => "Present", "apologies" => "Apologies", "absent" => "Absent", _ => "" }}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                    <h2>"What was shared"</h2>
                    {list(&record, "board").iter().map(|heading| view! {
                        <h3>{text(heading, "title")}</h3>
                        <ul>{list(heading, "items").iter().map(|item| view! {
                            <li>{text(item, "text")}
                                {(!text(item, "said_by").is_empty()).then(|| format!(" (said by {})", text(item, "said_by")))}</li>
                        }).collect_view()}</ul>
                    }).collect_view()}
                    <h2>"Safety scales"</h2>
                    {list(&record, "safety_scales").iter().map(|scale| view! {
                        <h3>{format!("{}. {}", text(scale, "number"), text(scale, "about"))}</h3>
                        {if text(scale, "status") == "revealed" {
                            view! {
                                <ul>{list(scale, "results").iter().map(|r| view! {
                                    <li>{format!("{}: {}", text(r, "name"), text(r, "score"))}
                                        {(!text(r, "reason").is_empty()).then(|| format!(" – “{}”", text(r, "reason")))}</li>
                                }).collect_view()}</ul>
                            }.into_any()
                        } else {
                            view! { <p>"The scores were not shown."</p> }.into_any()
                        }}
                    }).collect_view()}
                    <h2>"The plan"</h2>
                    {record.get("plan").map(|plan| view! {
                        <h3>"Danger statements and safety goals"</h3>
                        <ol>{list(plan, "dangers").iter().map(|d| view! {
                            <li><p>{text(d, "statement")}</p><p>"Safety goal: " {text(d, "safety_goal")}</p></li>
                        }).collect_view()}</ol>
                        <h3>"Actions"</h3>
                        <table>
                            <thead><tr><th scope="col">"What"</th><th scope="col">"Who"</th><th scope="col">"By"</th><th scope="col">"How we will know"</th></tr></thead>
                            <tbody>{list(plan, "actions").iter().map(|a| view! {
                                <tr><td>{text(a, "what")}</td><td>{text(a, "who")}</td><td>{date_words(&text(a, "by"))}</td><td>{text(a, "how_we_will_know")}</td></tr>
                            }).collect_view()}</tbody>
                        </table>
                        <h3>"Contingency plan"</h3>
                        <p class="plan-text">{text(plan, "contingency")}</p>
                        <h3>"Bottom lines"</h3>
                        <p class="plan-text">{text(plan, "bottom_lines")}</p>
                    })}
                    <h2>"Decisions"</h2>
                    {list(&record, "decisions").iter().map(|d| {
                        let decision = d.get("decision").cloned().unwrap_or_default();
                        view! {
                            <h3>{text(d, "name")}</h3>
                            <p><strong>{outcome_words(&decision)}</strong></p>
                            {(!text(d, "lead_social_worker").is_empty()).then(|| view! { <p>"Lead social worker: " {text(d, "lead_social_worker")}</p> })}
                            <ul>{list(d, "agency_views").iter().map(|v| view! { <li>{format!("{}: {}", text(v, "agency"), text(v, "view"))}</li> }).collect_view()}</ul>
                            {(!list(d, "dissent").is_empty()).then(|| view! {
                                <p>"Disagreed:"</p>
                                <ul>{list(d, "dissent").iter().map(|v| view! { <li>{format!("{}: {}", text(v, "who"), text(v, "why"))}</li> }).collect_view()}</ul>
                            })}
                        }
                    }).collect_view()}
                    <h2>"Next meetings"</h2>
                    {record.get("next_meetings").map(|n| view! {
                        <p>"First core group by " {date_words(&text(n, "core_group_by"))}</p>
                        <p>"Review conference by " {date_words(&text(n, "review_by"))}</p>
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
        |record| {
            let conference = record.get("conference").cloned().unwrap_or_default();
            let family: Vec<String> = list(&record, "participants")
                .iter()
                .filter(|p| matches!(text(p, "role").as_str(), "parent" | "carer"))
                .map(|p| text(p, "name"))
                .collect();
            let greeting = if family.is_empty() {
                "Dear parent or carer".to_owned()
            } else {
                format!("Dear {}", family.join(" and "))
            };
            let next = record.get("next_meetings").cloned().unwrap_or_default();
            view! {
                <main id="main" class="record letter">
                    <p class="hint screen-only">"This is a draft. Check it, change what you need to, then send it within one working day."</p>
                    <h1>"About the child protection conference"</h1>
                    <p>{greeting}","</p>
                    <p>{format!("Thank you for coming to the child protection conference on {}. This letter tells you what was decided.", day(&text(&conference, "scheduled_start")))}</p>
                    {list(&record, "decisions").iter().map(|d| {
                        let decision = d.get("decision").cloned().unwrap_or_default();
                        let name = text(d, "name");
                        let words = match decision.get("outcome").and_then(Value::as_str) {
                            Some("child_protection_plan") => format!(
                                "{name} will have a child protection plan. This means everyone agreed that {name} needs a plan to keep them safe, and we will all work with you on it. The plan is under the category of {}.",
                                list(&decision, "categories").iter().filter_map(Value::as_str).map(|c| c.replace('_', " ")).collect::<Vec<_>>().join(" and ")
                            ),
                            Some("child_in_need_plan") => format!("{name} will have a child in need plan. This means {name} and your family will get help and support, but {name} does not need a child protection plan."),
                            _ => format!("{name} does not need a plan from the conference."),
                        };
                        view! { <p>{words}</p> }
                    }).collect_view()}
                    {(!text(&next, "core_group_by").is_empty()).then(|| view! {
                        <p>{format!("The first core group meeting will be by {}. This is a smaller meeting with you and the professionals, to make the plan work.", date_words(&text(&next, "core_group_by")))}</p>
                        <p>{format!("The next conference will be by {}. It will look at how things are going.", date_words(&text(&next, "review_by")))}</p>
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
        |log| {
            let who = |v: &Value| {
                v.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("Roundtable")
                    .to_owned()
            };
            view! {
                <main id="main" class="record">
                    <h1>"Audit log"</h1>
                    <h2>"What was done"</h2>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Details"</th></tr></thead>
                        <tbody>{list(&log, "events").iter().map(|e| view! {
                            <tr><td>{text(e, "at")}</td><td>{who(e.get("actor").unwrap_or(&Value::Null))}</td>
                                <td>{text(e, "action").replace('_', " ")}</td><td>{e.get("detail").map(Value::to_string).unwrap_or_default()}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                    <h2>"Changes to the board and the plan"</h2>
                    <p>{format!("{} changes.", list(&log, "document_changes").len())}
                        {(log.get("truncated") == Some(&Value::Bool(true))).then_some(" Only the latest are shown.")}</p>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Document"</th></tr></thead>
                        <tbody>{list(&log, "document_changes").iter().map(|c| view! {
                            <tr><td>{text(c, "at")}</td><td>{who(c.get("participant").unwrap_or(&Value::Null))}</td><td>{text(c, "document")}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </main>
            }
            .into_any()
        },
    )
}
