//! The decision for each child, attendance and quorum, the next meetings, and
//! closing the conference.
//!
//! Everything here is a command the server checks and records; its outcome comes
//! back through the shared document (the `decisions` root), which every screen
//! draws from.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_shared::api::{Outcome, RecordDecision};
use roundtable_shared::model::{Category, Decision, Role};
use roundtable_shared::record::{AgencyView, Attendance, DecisionEntry, Dissent};

use crate::api;
use crate::board::context::BoardContext;

/// A decision in words, e.g. "Child protection plan: neglect, emotional abuse".
pub fn decision_words(decision: &Decision) -> String {
    match decision {
        Decision::ChildProtectionPlan { categories } => {
            let categories: Vec<String> = categories
                .as_slice()
                .iter()
                .map(|c| c.label().to_lowercase())
                .collect();
            format!("Child protection plan: {}", categories.join(", "))
        }
        Decision::ChildInNeedPlan => "Child in need plan".to_owned(),
        Decision::NoPlan => "No plan".to_owned(),
    }
}

/// A date as the document holds it (`YYYY-MM-DD`) in words, e.g. "15 January 2027".
pub fn date_words(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut parts = date.splitn(3, '-');
    let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next()) else {
        return date.to_owned();
    };
    match (
        month.parse::<usize>(),
        day.get(..2).unwrap_or(day).parse::<u32>(),
    ) {
        (Ok(m @ 1..=12), Ok(d)) => format!("{d} {} {year}", MONTHS[m - 1]),
        _ => date.to_owned(),
    }
}

/// The decisions and next meetings, for everyone on the board.
#[component]
pub fn DecisionPanel() -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    move || {
        let (decisions, next, closed, children) = snapshot.with(|s| {
            (
                s.record.decisions.clone(),
                s.record.next_meetings.clone(),
                s.record.closed.clone(),
                s.children.clone(),
            )
        });
        if decisions.is_empty() && closed.is_none() {
            return None;
        }
        Some(view! {
            <section class="decisions" aria-labelledby="decisions-heading">
                <h2 id="decisions-heading">"The decision"</h2>
                {closed.map(|_| view! {
                    <p class="notice" role="status">"The chair has closed this conference. The record can no longer be changed."</p>
                })}
                <ul class="decision-list">
                    {decisions.into_iter().map(|entry| {
                        let name = children
                            .iter()
                            .find(|c| c.id == entry.child)
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        view! { <DecisionShown name entry/> }
                    }).collect_view()}
                </ul>
                {next.map(|next| view! {
                    <h3>"Next meetings"</h3>
                    <p>"First core group by " <strong>{date_words(&next.core_group_by)}</strong></p>
                    <p>"Review conference by " <strong>{date_words(&next.review_by)}</strong></p>
                })}
            </section>
        })
    }
}

#[component]
fn DecisionShown(name: String, entry: DecisionEntry) -> impl IntoView {
    view! {
        <li>
            <p><strong>{format!("{name}: {}", decision_words(&entry.decision))}</strong></p>
            {entry.lead_social_worker.map(|who| view! { <p>"Lead social worker: " {who}</p> })}
            {(!entry.agency_views.is_empty()).then(|| view! {
                <p>"Agencies’ views:"</p>
                <ul>{entry.agency_views.into_iter().map(|v| view! { <li>{format!("{}: {}", v.agency, v.view)}</li> }).collect_view()}</ul>
            })}
            {(!entry.dissent.is_empty()).then(|| view! {
                <p>"Disagreed:"</p>
                <ul>{entry.dissent.into_iter().map(|d| view! { <li>{format!("{}: {}", d.who, d.why)}</li> }).collect_view()}</ul>
            })}
        </li>
    }
}

/// The chair's part: attendance and quorum, a decision for each child, the next
/// meetings, closing and reopening, and the record.
#[component]
pub fn ChairRecord(conference_id: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let (problem, set_problem) = signal(None::<String>);
    let closed = Memo::new(move |_| snapshot.with(|s| s.record.closed.is_some()));
    let children = Memo::new(move |_| snapshot.with(|s| s.children.clone()));
    let record_link = format!("/conference/{conference_id}/record");
    let letter_link = format!("/conference/{conference_id}/letter");
    let audit_link = format!("/conference/{conference_id}/audit");
    let run = move |call: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), api::ApiError>>>,
    >| {
        spawn_local(async move {
            set_problem.set(call.await.err().map(|e| e.to_string()));
        });
    };
    let close = {
        let id = conference_id.clone();
        move |_| {
            let id = id.clone();
            run(Box::pin(async move { api::close_conference(&id).await }));
        }
    };
    let reopen = {
        let id = conference_id.clone();
        move |_| {
            let id = id.clone();
            run(Box::pin(async move { api::reopen_conference(&id).await }));
        }
    };
    view! {
        <section class="chair-record" aria-labelledby="chair-record-heading">
            <h3 id="chair-record-heading">"Decision and record"</h3>
            {move || (!closed.get()).then(|| {
                let id = conference_id.clone();
                view! {
                    <AttendanceForm conference_id=id.clone() set_problem/>
                    {children.get().into_iter().map(|child| view! {
                        <DecisionForm conference_id=id.clone() child_id=child.id.to_string() child_name=child.name set_problem/>
                    }).collect_view()}
                    <NextMeetingsForm conference_id=id set_problem/>
                }
            })}
            <p>
                <a href=record_link.clone()>"The record (to read or print)"</a>" · "
                <a href=letter_link.clone()>"Draft letter to the family"</a>" · "
                <a href=audit_link.clone()>"Audit log"</a>
            </p>
            {move || if closed.get() {
                view! { <button type="button" class="button" on:click=reopen.clone()>"Reopen the conference"</button> }.into_any()
            } else {
                view! { <button type="button" class="button" on:click=close.clone()>"Close the conference"</button> }.into_any()
            }}
            <div role="alert">{move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}</div>
        </section>
    }
}

/// Who is present, who sent apologies; and whether the conference is quorate.
#[component]
fn AttendanceForm(
    conference_id: String,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let people = Memo::new(move |_| {
        snapshot.with(|s| {
            s.roster
                .iter()
                .filter(|p| p.role != Role::RoomDisplay && p.role != Role::Chair)
                .map(|p| {
                    let words = match &p.agency {
                        Some(agency) => format!("{} ({agency})", p.name),
                        None => format!("{} ({})", p.name, p.role.label().to_lowercase()),
                    };
                    let now = s.record.attendance.get(&p.id).copied();
                    (p.id.to_string(), words, now)
                })
                .collect::<Vec<_>>()
        })
    });
    let quorum = Memo::new(move |_| snapshot.with(|s| s.record.quorum.clone()));
    view! {
        <details class="attendance">
            <summary>"Attendance"</summary>
            {move || people.get().into_iter().map(|(pid, words, now)| {
                let select_id = format!("attendance-{pid}");
                let conference_id = conference_id.clone();
                view! {
                    <label for=select_id.clone()>{words}</label>
                    <select id=select_id on:change=move |e| {
                        let (conference_id, pid, status) = (conference_id.clone(), pid.clone(), event_target_value(&e));
                        spawn_local(async move {
                            set_problem.set(api::set_attendance(&conference_id, &pid, &status).await.err().map(|e| e.to_string()));
                        });
                    }>
                        <option value="" selected=now.is_none()>"Not recorded"</option>
                        {Attendance::ALL.into_iter().map(|a| {
                            let words = match a {
                                Attendance::Present => "Present",
                                Attendance::Apologies => "Sent apologies",
                                Attendance::Absent => "Absent",
                            };
                            view! { <option value=a.as_str() selected=now == Some(a)>{words}</option> }
                        }).collect_view()}
                    </select>
                }
            }).collect_view()}
        </details>
        <p role="status" class="quorum">{move || match quorum.get() {
            Some(q) if q.quorate => format!(
                "Quorate: children’s social care and {} other agencies are present.",
                q.other_agencies.len()
            ),
            Some(q) => format!(
                "Not quorate yet: it needs children’s social care ({}) and at least two other agencies ({} present).",
                if q.social_care { "present" } else { "not present" },
                q.other_agencies.len()
            ),
            None => "Record who is present to see whether the conference is quorate.".to_owned(),
        }}</p>
    }
}

/// The decision for one child.
#[component]
fn DecisionForm(
    conference_id: String,
    child_id: String,
    child_name: String,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let outcome = RwSignal::new(None::<Outcome>);
    let categories: Vec<(Category, RwSignal<bool>)> = [
        Category::PhysicalAbuse,
        Category::EmotionalAbuse,
        Category::SexualAbuse,
        Category::Neglect,
    ]
    .into_iter()
    .map(|c| (c, RwSignal::new(false)))
    .collect();
    let lead = RwSignal::new(String::new());
    let views = RwSignal::new(String::new());
    let dissent = RwSignal::new(String::new());
    let (done, set_done) = signal(None::<String>);
    let key = child_id.clone();
    let chosen = categories.clone();
    let name = child_name.clone();
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(chosen_outcome) = outcome.get_untracked() else {
            set_problem.set(Some(format!("Choose the decision for {name} first.")));
            return;
        };
        let body = RecordDecision {
            outcome: chosen_outcome,
            categories: chosen
                .iter()
                .filter(|(_, on)| on.get_untracked())
                .map(|(c, _)| *c)
                .collect(),
            agency_views: lines_of(&views.get_untracked())
                .into_iter()
                .map(|(agency, view)| AgencyView { agency, view })
                .collect(),
            dissent: lines_of(&dissent.get_untracked())
                .into_iter()
                .map(|(who, why)| Dissent { who, why })
                .collect(),
            lead_social_worker: Some(lead.get_untracked().trim().to_owned())
                .filter(|l| !l.is_empty()),
        };
        let (conference_id, child_id, name) =
            (conference_id.clone(), child_id.clone(), name.clone());
        spawn_local(async move {
            match api::record_decision(&conference_id, &child_id, &body).await {
                Ok(()) => {
                    set_problem.set(None);
                    set_done.set(Some(format!("Decision for {name} recorded.")));
                }
                Err(e) => set_problem.set(Some(e.to_string())),
            }
        });
    };
    let outcome_name = format!("outcome-{key}");
    view! {
        <form class="decision-form" on:submit=submit>
            <fieldset>
                <legend>{format!("Decision for {child_name}")}</legend>
                {[
                    (Outcome::ChildProtectionPlan, "child_protection_plan", "Child protection plan"),
                    (Outcome::ChildInNeedPlan, "child_in_need_plan", "Child in need plan"),
                    (Outcome::NoPlan, "no_plan", "No plan"),
                ].into_iter().map(|(choice, value, words)| {
                    let id = format!("{outcome_name}-{value}");
                    view! {
                        <div class="check">
                            <input type="radio" name=outcome_name.clone() id=id.clone() value=value
                                on:change=move |_| outcome.set(Some(choice))/>
                            <label for=id>{words}</label>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            {move || (outcome.get() == Some(Outcome::ChildProtectionPlan)).then(|| {
                let key = key.clone();
                view! {
                    <fieldset>
                        <legend>"Category (one or more)"</legend>
                        {categories.iter().map(|(category, on)| {
                            let on = *on;
                            let id = format!("category-{key}-{}", category.label().replace(' ', "-").to_lowercase());
                            view! {
                                <div class="check">
                                    <input type="checkbox" id=id.clone() prop:checked=move || on.get()
                                        on:change=move |e| on.set(event_target_checked(&e))/>
                                    <label for=id>{category.label()}</label>
                                </div>
                            }
                        }).collect_view()}
                    </fieldset>
                }
            })}
            <label for=format!("lead-{}", child_name)>"Lead social worker"</label>
            <input id=format!("lead-{}", child_name) type="text" maxlength="200" bind:value=lead/>
            <label for=format!("views-{}", child_name)>"Each agency’s view (one a line: agency: view)"</label>
            <textarea id=format!("views-{}", child_name) rows="3" bind:value=views></textarea>
            <label for=format!("dissent-{}", child_name)>"Anyone who disagrees (one a line: who: why)"</label>
            <textarea id=format!("dissent-{}", child_name) rows="2" bind:value=dissent></textarea>
            <button type="submit" class="button">{format!("Record the decision for {child_name}")}</button>
            <p role="status">{move || done.get()}</p>
        </form>
    }
}

/// Lines like "Police: agree with a plan" as (before, after) the first colon.
pub fn lines_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (a, b) = line.split_once(':')?;
            let (a, b) = (a.trim(), b.trim());
            (!a.is_empty() && !b.is_empty()).then(|| (a.to_owned(), b.to_owned()))
        })
        .collect()
}

/// The dates of the first core group and the review, as proposed or changed.
#[component]
fn NextMeetingsForm(
    conference_id: String,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let next = Memo::new(move |_| snapshot.with(|s| s.record.next_meetings.clone()));
    let core = RwSignal::new(String::new());
    let review = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(next) = next.get() {
            core.set(next.core_group_by);
            review.set(next.review_by);
        }
    });
    let (done, set_done) = signal(None::<String>);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let (conference_id, core, review) = (
            conference_id.clone(),
            core.get_untracked(),
            review.get_untracked(),
        );
        spawn_local(async move {
            match api::set_next_meetings(&conference_id, &core, &review).await {
                Ok(()) => {
                    set_problem.set(None);
                    set_done.set(Some("Dates saved.".to_owned()));
                }
                Err(e) => set_problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <form class="next-meetings" on:submit=submit>
            <h4>"Next meetings"</h4>
            <p class="hint">{move || next.get().map(|n| format!(
                "Proposed: core group by {}, review by {} (working days in England and Wales).",
                date_words(&n.proposed_core_group_by),
                date_words(&n.proposed_review_by)
            ))}</p>
            <label for="core-group-by">"First core group by"</label>
            <input id="core-group-by" type="date" bind:value=core/>
            <label for="review-by">"Review conference by"</label>
            <input id="review-by" type="date" bind:value=review/>
            <button type="submit" class="button">"Save the dates"</button>
            <p role="status">{move || done.get()}</p>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roundtable_shared::model::NonEmptyCategories;

    #[test]
    fn a_decision_reads_in_plain_words() {
        let plan = Decision::ChildProtectionPlan {
            categories: NonEmptyCategories::new(vec![Category::Neglect, Category::EmotionalAbuse])
                .unwrap(),
        };
        assert_eq!(
            decision_words(&plan),
            "Child protection plan: emotional abuse, neglect"
        );
        assert_eq!(decision_words(&Decision::NoPlan), "No plan");
    }

    #[test]
    fn dates_and_lines_read_as_people_write_them() {
        assert_eq!(date_words("2027-01-15"), "15 January 2027");
        assert_eq!(date_words("soon"), "soon");
        assert_eq!(
            lines_of("Police: agree\n\nSchool:  worried about attendance \nno colon"),
            [
                ("Police".to_owned(), "agree".to_owned()),
                ("School".to_owned(), "worried about attendance".to_owned())
            ]
        );
    }
}
