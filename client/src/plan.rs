//! The plan, drafted live on the board: danger statements with their safety goals,
//! actions (what, who, by when, how we will know, which child), the contingency plan
//! and any bottom lines. The chair and the minute-taker write it together; everyone
//! else reads it as it is written.
//!
//! Every text is a shared text typed into as the smallest change (see
//! [`crate::text`]), so two people typing in one field both keep their words.

use leptos::{html, prelude::*};
use roundtable_shared::doc::SaidBy;
use roundtable_shared::permissions;
use roundtable_shared::plan::{self, ACTIONS, BOTTOM_LINES, CONTINGENCY, DANGERS, Plan};
use yrs::{GetString, ReadTxn, Text, TextRef};

use crate::board::context::BoardContext;
use crate::text::splice;

/// Where a text of the plan lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanText {
    /// [`CONTINGENCY`] or [`BOTTOM_LINES`].
    Whole(&'static str),
    /// A text field of a danger or an action.
    Field {
        list: &'static str,
        id: String,
        field: &'static str,
    },
}

impl PlanText {
    fn get<T: ReadTxn>(&self, txn: &T) -> Option<TextRef> {
        match self {
            PlanText::Whole(name) => plan::text(txn, name),
            PlanText::Field { list, id, field } => plan::field_text(txn, list, id, field),
        }
    }

    /// The text as the plan read after the last change holds it.
    fn in_plan(&self, plan: &Plan) -> Option<String> {
        match self {
            PlanText::Whole(name) if *name == CONTINGENCY => Some(plan.contingency.clone()),
            PlanText::Whole(_) => Some(plan.bottom_lines.clone()),
            PlanText::Field { list, id, field } if *list == DANGERS => {
                let danger = plan.dangers.iter().find(|d| d.id == *id)?;
                Some(match *field {
                    plan::danger::GOAL => danger.goal.clone(),
                    _ => danger.statement.clone(),
                })
            }
            PlanText::Field { id, field, .. } => {
                let action = plan.actions.iter().find(|a| a.id == *id)?;
                Some(match *field {
                    plan::action::HOW_WE_KNOW => action.how_we_know.clone(),
                    _ => action.what.clone(),
                })
            }
        }
    }
}

/// A text box bound to one shared text of the plan.
#[component]
fn SharedText(place: PlanText, dom_id: String, label: String, rows: u32) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let area = NodeRef::<html::Textarea>::new();
    let value = {
        let place = place.clone();
        Memo::new(move |_| snapshot.with(|s| place.in_plan(&s.plan).unwrap_or_default()))
    };
    // Someone else's typing: show it, and keep our caret among the same words.
    crate::text::follow_others(area, move || Some(value.get()));
    let on_input = move |_| {
        let Some(area) = area.get_untracked() else {
            return;
        };
        let place = place.clone();
        let before = context
            .live
            .with_value(|live| live.read(|txn| place.get(txn).map(|t| t.get_string(txn))));
        let Some(before) = before else {
            return;
        };
        let Some(change) = splice(&before, &area.value()) else {
            return;
        };
        context.edit(move |txn| {
            let Some(text) = place.get(txn) else {
                return;
            };
            if change.delete > 0 {
                text.remove_range(txn, change.at, change.delete);
            }
            if !change.insert.is_empty() {
                text.insert(txn, change.at, &change.insert);
            }
        });
    };
    view! {
        <label for=dom_id.clone()>{label}</label>
        <textarea id=dom_id rows=rows node_ref=area on:input=on_input></textarea>
    }
}

/// A new random id, from the browser's secure random numbers.
fn new_id() -> String {
    crate::board::context::new_item_id()
}

/// Who will do an action, in words.
fn who_words(context: &BoardContext, who: &Option<SaidBy>) -> String {
    match who {
        None => String::new(),
        Some(said_by) => context.snapshot.with(|s| s.said_by_words(said_by)),
    }
}

/// The plan on the board.
#[component]
pub fn PlanPanel() -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let writes = permissions::changes_every_item(context.role);
    let plan = Memo::new(move |_| snapshot.with(|s| s.plan.clone()));
    let empty = move || plan.with(|p| *p == Plan::default());
    let danger_ids = Memo::new(move |_| {
        plan.with(|p| p.dangers.iter().map(|d| d.id.clone()).collect::<Vec<_>>())
    });
    let action_ids = Memo::new(move |_| {
        plan.with(|p| p.actions.iter().map(|a| a.id.clone()).collect::<Vec<_>>())
    });
    let add_danger = {
        let context = context.clone();
        move |_| {
            let id = new_id();
            context.edit(move |txn| {
                plan::add_danger(txn, &id, "", "");
            });
        }
    };
    let add_action = {
        let context = context.clone();
        move |_| {
            let id = new_id();
            context.edit(move |txn| {
                plan::add_action(txn, &id, "");
            });
        }
    };
    let readers_text = move |text: String| {
        if text.trim().is_empty() {
            view! { <p class="empty">"Nothing yet."</p> }.into_any()
        } else {
            view! { <p class="plan-text">{text}</p> }.into_any()
        }
    };
    move || {
        (writes || !empty()).then(|| {
            view! {
                <section class="plan" aria-labelledby="plan-heading">
                    <h2 id="plan-heading">"The plan"</h2>
                    <h3>"Danger statements and safety goals"</h3>
                    <ol class="dangers">
                        <For each=move || danger_ids.get() key=|id| id.clone() let:id>
                            <DangerRow id writes/>
                        </For>
                    </ol>
                    {writes.then(|| view! {
                        <button type="button" class="secondary" on:click=add_danger.clone()>"Add a danger statement"</button>
                    })}
                    <h3>"Actions"</h3>
                    <ol class="actions">
                        <For each=move || action_ids.get() key=|id| id.clone() let:id>
                            <ActionRow id writes/>
                        </For>
                    </ol>
                    {writes.then(|| view! {
                        <button type="button" class="secondary" on:click=add_action.clone()>"Add an action"</button>
                    })}
                    <h3>"Contingency plan"</h3>
                    {if writes {
                        view! {
                            <SharedText place=PlanText::Whole(CONTINGENCY) dom_id="plan-contingency".into()
                                label="What will happen if the plan is not followed".into() rows=3/>
                        }.into_any()
                    } else {
                        readers_text(plan.with(|p| p.contingency.clone()))
                    }}
                    <h3>"Bottom lines"</h3>
                    {if writes {
                        view! {
                            <SharedText place=PlanText::Whole(BOTTOM_LINES) dom_id="plan-bottom-lines".into()
                                label="What must happen, or must not happen, whatever else changes".into() rows=3/>
                        }.into_any()
                    } else {
                        readers_text(plan.with(|p| p.bottom_lines.clone()))
                    }}
                </section>
            }
        })
    }
}

/// One danger statement with its safety goal.
#[component]
fn DangerRow(id: String, writes: bool) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let danger = {
        let id = id.clone();
        Memo::new(move |_| snapshot.with(|s| s.plan.dangers.iter().find(|d| d.id == id).cloned()))
    };
    let number = {
        let id = id.clone();
        move || {
            snapshot.with(|s| {
                s.plan
                    .dangers
                    .iter()
                    .position(|d| d.id == id)
                    .map_or(0, |n| n + 1)
            })
        }
    };
    if !writes {
        return view! {
            <li>
                <p><strong>"We are worried that: "</strong>{move || danger.with(|d| d.as_ref().map(|d| d.statement.clone()))}</p>
                <p><strong>"Safety goal: "</strong>{move || danger.with(|d| d.as_ref().map(|d| d.goal.clone()))}</p>
            </li>
        }
        .into_any();
    }
    let n = number();
    let remove = {
        let (context, id) = (context.clone(), id.clone());
        move |_| {
            let id = id.clone();
            context.edit(move |txn| {
                plan::remove(txn, DANGERS, &id);
            });
        }
    };
    view! {
        <li class="plan-entry">
            <SharedText place=PlanText::Field { list: DANGERS, id: id.clone(), field: plan::danger::STATEMENT }
                dom_id=format!("danger-{id}-statement") label=format!("Danger statement {n}: who is worried, about what, and what could happen if nothing changes") rows=3/>
            <SharedText place=PlanText::Field { list: DANGERS, id: id.clone(), field: plan::danger::GOAL }
                dom_id=format!("danger-{id}-goal") label=format!("Safety goal {n}") rows=2/>
            <button type="button" class="small danger" on:click=remove>{format!("Remove danger statement {n}")}</button>
        </li>
    }
    .into_any()
}

/// One action.
#[component]
fn ActionRow(id: String, writes: bool) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let action = {
        let id = id.clone();
        Memo::new(move |_| snapshot.with(|s| s.plan.actions.iter().find(|a| a.id == id).cloned()))
    };
    let n = snapshot.with_untracked(|s| {
        s.plan
            .actions
            .iter()
            .position(|a| a.id == id)
            .map_or(0, |n| n + 1)
    });
    if !writes {
        let context = context.clone();
        return view! {
            <li>
                {move || action.get().map(|a| {
                    let child = a.child.and_then(|c| snapshot.with(|s| s.children.iter().find(|k| k.id == c).map(|k| k.name.clone())));
                    view! {
                        <p><strong>{a.what}</strong></p>
                        <p>"Who: " {who_words(&context, &a.who)} " · By: " {a.by.map(plan::format_date).unwrap_or_default()}
                            {child.map(|c| format!(" · For {c}"))}</p>
                        <p>"How we will know: " {a.how_we_know}</p>
                    }
                })}
            </li>
        }
        .into_any();
    }
    let set = {
        let (context, id) = (context.clone(), id.clone());
        move |field: &'static str, value: String| {
            let id = id.clone();
            context.edit(move |txn| {
                plan::set_action_field(txn, &id, field, &value);
            });
        }
    };
    let set_who = {
        let set = set.clone();
        move |value: String| set(plan::action::WHO, value)
    };
    let set_agency = {
        let set = set.clone();
        move |value: String| {
            let value = value.trim().to_owned();
            set(
                plan::action::WHO,
                if value.is_empty() {
                    String::new()
                } else {
                    format!("agency:{value}")
                },
            )
        }
    };
    let set_by = {
        let set = set.clone();
        move |value: String| set(plan::action::BY, value)
    };
    let set_child = move |value: String| set(plan::action::CHILD, value);
    let remove = {
        let (context, id) = (context.clone(), id.clone());
        move |_| {
            let id = id.clone();
            context.edit(move |txn| {
                plan::remove(txn, ACTIONS, &id);
            });
        }
    };
    let people = Memo::new(move |_| {
        snapshot.with(|s| {
            s.roster
                .iter()
                .map(|p| (format!("participant:{}", p.id), p.name.clone()))
                .collect::<Vec<_>>()
        })
    });
    let children = Memo::new(move |_| snapshot.with(|s| s.children.clone()));
    let who_now = move || {
        action.with(|a| {
            a.as_ref()
                .and_then(|a| a.who.as_ref().map(SaidBy::encode))
                .unwrap_or_default()
        })
    };
    let agency_now = move || match action.with(|a| a.as_ref().and_then(|a| a.who.clone())) {
        Some(SaidBy::Agency(name)) => name,
        _ => String::new(),
    };
    let by_now = move || {
        action.with(|a| {
            a.as_ref()
                .and_then(|a| a.by)
                .map(plan::format_date)
                .unwrap_or_default()
        })
    };
    let child_now = move || {
        action.with(|a| {
            a.as_ref()
                .and_then(|a| a.child)
                .map(|c| c.to_string())
                .unwrap_or_default()
        })
    };
    view! {
        <li class="plan-entry">
            <SharedText place=PlanText::Field { list: ACTIONS, id: id.clone(), field: plan::action::WHAT }
                dom_id=format!("action-{id}-what") label=format!("Action {n}: what needs to happen") rows=2/>
            <label for=format!("action-{id}-who")>"Who will do it"</label>
            <select id=format!("action-{id}-who") on:change=move |e| set_who(event_target_value(&e))>
                <option value="" selected=move || who_now().is_empty()>"Choose a person"</option>
                {move || people.get().into_iter().map(|(value, name)| {
                    let chosen = value.clone();
                    view! { <option value=value selected=move || who_now() == chosen>{name}</option> }
                }).collect_view()}
            </select>
            <label for=format!("action-{id}-agency")>"or an agency"</label>
            <input id=format!("action-{id}-agency") type="text" maxlength="200"
                prop:value=agency_now on:change=move |e| set_agency(event_target_value(&e))/>
            <label for=format!("action-{id}-by")>"By when"</label>
            <input id=format!("action-{id}-by") type="date"
                prop:value=by_now on:change=move |e| set_by(event_target_value(&e))/>
            <SharedText place=PlanText::Field { list: ACTIONS, id: id.clone(), field: plan::action::HOW_WE_KNOW }
                dom_id=format!("action-{id}-know") label="How we will know it has happened".into() rows=2/>
            <label for=format!("action-{id}-child")>"Which child (if only one)"</label>
            <select id=format!("action-{id}-child") on:change=move |e| set_child(event_target_value(&e))>
                <option value="" selected=move || child_now().is_empty()>"All the children"</option>
                {move || children.get().into_iter().map(|c| {
                    let value = c.id.to_string();
                    let chosen = value.clone();
                    view! { <option value=value selected=move || child_now() == chosen>{c.name}</option> }
                }).collect_view()}
            </select>
            <button type="button" class="small danger" on:click=remove>{format!("Remove action {n}")}</button>
        </li>
    }
    .into_any()
}
