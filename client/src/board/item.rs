//! One item on the board: its words, who said it, which children it is about,
//! and, for someone who may change it, an editor.
//!
//! Typing goes into the item's shared text as the smallest change (see
//! [`crate::text`]), so two people typing in one item both keep their words;
//! when someone else's typing arrives, the text box keeps your caret where it
//! was among the words.

use leptos::{html, prelude::*};
use roundtable_shared::doc::{Board, SaidBy};
use roundtable_shared::model::Role;
use yrs::{GetString, Text};

use super::context::{BoardContext, short};
use crate::text::splice;

/// The current text of item `id` in the local copy of the document.
fn text_now(context: &BoardContext, id: &str) -> Option<String> {
    context.live.with_value(|live| {
        live.read(|txn| {
            let board = Board::get(txn)?;
            Some(board.text(txn, id)?.get_string(txn))
        })
    })
}

/// An item of the board, by id.
#[component]
pub fn ItemRow(id: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let item = {
        let id = id.clone();
        Memo::new(move |_| snapshot.with(|s| s.item(&id).cloned()))
    };
    let open = {
        let id = id.clone();
        let open_item = context.open_item;
        Memo::new(move |_| open_item.with(|o| o.as_deref() == Some(id.as_str())))
    };
    let may_change = {
        let context = context.clone();
        Memo::new(move |_| {
            item.with(|i| {
                i.as_ref()
                    .is_some_and(|i| context.may_change(i.author.as_deref()))
            })
        })
    };
    let people = context.signals.people;
    let me = context.me.clone();
    let editing_id = id.clone();
    // Who else has this item open.
    let others_editing = Memo::new(move |_| {
        people.with(|people| {
            people
                .iter()
                .filter(|p| p.id != me && p.editing.as_deref() == Some(editing_id.as_str()))
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        })
    });
    let details = {
        let me = context.me.clone();
        move || {
            let Some(item) = item.get() else {
                return Vec::new();
            };
            snapshot.with(|s| {
                let mut parts = Vec::new();
                let children = s.children_words(&item);
                if !children.is_empty() {
                    parts.push(format!("About {}", children.join(" and ")));
                }
                if let Some(said_by) = &item.said_by {
                    parts.push(format!("Said by {}", s.said_by_words(said_by)));
                }
                if item.author.as_deref() == Some(me.as_str()) {
                    parts.push("Added by you".to_owned());
                }
                parts
            })
        }
    };
    let edit_button_id = format!("item-{id}-edit");
    let open_editor = {
        let id = id.clone();
        let open_item = context.open_item;
        move |_| open_item.set(Some(id.clone()))
    };
    let data_id = id.clone();
    let label_text = move || item.with(|i| i.as_ref().map(|i| short(&i.text)).unwrap_or_default());

    view! {
        <li class="item" data-item=data_id class:editing=move || !others_editing.with(Vec::is_empty)>
            {move || {
                if open.get() && may_change.get() {
                    view! { <Editor id=id.clone()/> }.into_any()
                } else {
                    view! {
                        <p class="item-text">{move || item.with(|i| i.as_ref().map(|i| i.text.clone()))}</p>
                    }
                        .into_any()
                }
            }}
            {move || {
                let parts = details();
                (!parts.is_empty()).then(|| view! { <p class="item-details">{parts.join(" · ")}</p> })
            }}
            {move || {
                let names = others_editing.get();
                (!names.is_empty())
                    .then(|| {
                        view! {
                            <p class="item-editing">
                                {format!("{} {} typing here", names.join(" and "), if names.len() == 1 { "is" } else { "are" })}
                            </p>
                        }
                    })
            }}
            {move || {
                (may_change.get() && !open.get())
                    .then(|| {
                        view! {
                            <button type="button" class="secondary small" id=edit_button_id.clone() on:click=open_editor.clone()>
                                "Change"
                                <span class="visually-hidden">" “" {label_text} "”"</span>
                            </button>
                        }
                    })
            }}
        </li>
    }
}

/// The controls for changing one item.
#[component]
fn Editor(id: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let item = {
        let id = id.clone();
        Memo::new(move |_| snapshot.with(|s| s.item(&id).cloned()))
    };
    let area = NodeRef::<html::Textarea>::new();
    let text_id = format!("item-{id}-text");
    let heading_id = format!("item-{id}-heading");
    let said_id = format!("item-{id}-said");
    let agency_id = format!("item-{id}-agency");
    let up_id = format!("item-{id}-up");
    let down_id = format!("item-{id}-down");
    let confirm_delete = RwSignal::new(false);

    // The box starts with the item's words, and takes the caret.
    {
        let initial = item.get_untracked().map(|i| i.text).unwrap_or_default();
        area.on_load(move |area| {
            area.set_value(&initial);
            let _ = area.focus();
        });
    }
    // Someone else's typing: show it, and keep our caret among the same words.
    crate::text::follow_others(area, move || {
        item.with(|i| i.as_ref().map(|i| i.text.clone()))
    });

    let on_input = {
        let context = context.clone();
        let id = id.clone();
        move |_| {
            let Some(area) = area.get_untracked() else {
                return;
            };
            let Some(before) = text_now(&context, &id) else {
                return;
            };
            let Some(change) = splice(&before, &area.value()) else {
                return;
            };
            let id = id.clone();
            context.edit(move |txn| {
                let Some(text) = Board::in_txn(txn).text(txn, &id) else {
                    return;
                };
                if change.delete > 0 {
                    text.remove_range(txn, change.at, change.delete);
                }
                if !change.insert.is_empty() {
                    text.insert(txn, change.at, &change.insert);
                }
            });
        }
    };

    let heading_now =
        move || item.with(|i| i.as_ref().map(|i| i.heading.clone()).unwrap_or_default());

    // Moves the item among its heading's items: -1 up, +1 down.
    let step = {
        let context = context.clone();
        let id = id.clone();
        move |by: i32, focus: String| {
            let heading = heading_now();
            let ids = snapshot.with_untracked(|s| s.ids_under(&heading));
            let Some(at) = ids.iter().position(|i| *i == id) else {
                return;
            };
            let (before, after) = match by {
                -1 if at > 0 => (
                    at.checked_sub(2).map(|i| ids[i].clone()),
                    Some(ids[at - 1].clone()),
                ),
                1 if at + 1 < ids.len() => (Some(ids[at + 1].clone()), ids.get(at + 2).cloned()),
                _ => return,
            };
            let id = id.clone();
            context.edit(move |txn| {
                Board::in_txn(txn).move_item(
                    txn,
                    &id,
                    &heading,
                    before.as_deref(),
                    after.as_deref(),
                );
            });
            context.focus_next.set(Some(focus));
        }
    };
    let position = {
        let id = id.clone();
        move || {
            let heading = heading_now();
            let ids = snapshot.with(|s| s.ids_under(&heading));
            let at = ids.iter().position(|i| *i == id).unwrap_or(0);
            (at == 0, at + 1 >= ids.len())
        }
    };
    let (first, last) = (
        {
            let position = position.clone();
            move || position().0
        },
        move || position().1,
    );
    let move_up = {
        let step = step.clone();
        let up_id = up_id.clone();
        move |_| step(-1, up_id.clone())
    };
    let move_down = {
        let down_id = down_id.clone();
        move |_| step(1, down_id.clone())
    };

    let to_heading = {
        let context = context.clone();
        let id = id.clone();
        let heading_id = heading_id.clone();
        move |event: leptos::ev::Event| {
            let heading = event_target_value(&event);
            if heading == heading_now() {
                return;
            }
            let last = snapshot.with_untracked(|s| s.ids_under(&heading).last().cloned());
            let id = id.clone();
            context.edit(move |txn| {
                Board::in_txn(txn).move_item(txn, &id, &heading, last.as_deref(), None);
            });
            context.focus_next.set(Some(heading_id.clone()));
        }
    };

    let said_by_now = move || {
        item.with(|i| {
            i.as_ref()
                .and_then(|i| i.said_by.as_ref().map(SaidBy::encode))
        })
        .unwrap_or_default()
    };
    let set_said_by = {
        let context = context.clone();
        let id = id.clone();
        move |said_by: Option<SaidBy>| {
            let id = id.clone();
            context.edit(move |txn| {
                Board::in_txn(txn).set_said_by(txn, &id, said_by.as_ref());
            });
        }
    };
    let on_said_by = {
        let set_said_by = set_said_by.clone();
        move |event: leptos::ev::Event| set_said_by(SaidBy::decode(&event_target_value(&event)))
    };
    let on_agency = move |event: leptos::ev::Event| {
        let agency = event_target_value(&event).trim().to_owned();
        if !agency.is_empty() {
            set_said_by(Some(SaidBy::Agency(agency)));
        }
    };
    // Everyone who could have said something, and every agency in the room.
    let speakers = move || {
        snapshot.with(|s| {
            let mut options: Vec<(String, String)> = s
                .roster
                .iter()
                .filter(|p| p.role != Role::RoomDisplay)
                .map(|p| {
                    (
                        SaidBy::Participant(p.id).encode(),
                        s.said_by_words(&SaidBy::Participant(p.id)),
                    )
                })
                .collect();
            let mut agencies: Vec<String> =
                s.roster.iter().filter_map(|p| p.agency.clone()).collect();
            if let Some(Some(SaidBy::Agency(agency))) =
                item.with(|i| i.as_ref().map(|i| i.said_by.clone()))
            {
                agencies.push(agency);
            }
            agencies.sort();
            agencies.dedup();
            options.extend(
                agencies
                    .into_iter()
                    .map(|a| (SaidBy::Agency(a.clone()).encode(), format!("{a} (agency)"))),
            );
            options
        })
    };

    let children = move || snapshot.with(|s| s.children.clone());
    let concerns = move |child: &str| {
        item.with(|i| {
            i.as_ref()
                .is_some_and(|i| i.children.iter().any(|c| c == child))
        })
    };
    let set_child = {
        let context = context.clone();
        let id = id.clone();
        move |child: String, checked: bool| {
            let Ok(child) = child.parse() else {
                return;
            };
            let id = id.clone();
            context.edit(move |txn| {
                Board::in_txn(txn).set_child(txn, &id, child, checked);
            });
        }
    };

    let done = {
        let context = context.clone();
        let id = id.clone();
        move || {
            context.open_item.set(None);
            context.focus_next.set(Some(format!("item-{id}-edit")));
        }
    };
    let on_done = {
        let done = done.clone();
        move |_| done()
    };
    let on_keydown = move |event: web_sys::KeyboardEvent| {
        if event.key() == "Escape" {
            event.prevent_default();
            done();
        }
    };
    let delete = {
        let context = context.clone();
        let id = id.clone();
        move |_| {
            let heading = heading_now();
            let id = id.clone();
            context.open_item.set(None);
            context.edit(move |txn| {
                Board::in_txn(txn).delete_item(txn, &id);
            });
            context.focus_next.set(Some(format!("add-{heading}")));
        }
    };
    let keep = {
        let id = id.clone();
        move |_| {
            confirm_delete.set(false);
            context.focus_next.set(Some(format!("item-{id}-delete")));
        }
    };
    let delete_id = format!("item-{id}-delete");

    view! {
        <div class="editor" role="group" aria-label="Change this item" on:keydown=on_keydown>
            <label for=text_id.clone()>"Words"</label>
            <textarea id=text_id node_ref=area rows="3" on:input=on_input></textarea>
            <div class="field">
                <label for=heading_id.clone()>"Heading"</label>
                <select id=heading_id on:change=to_heading>
                    {move || {
                        let current = heading_now();
                        snapshot
                            .with(|s| s.headings.clone())
                            .into_iter()
                            .map(|h| {
                                let selected = h.key == current;
                                view! { <option value=h.key selected=selected>{h.title}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </div>
            {move || {
                let children = children();
                (!children.is_empty())
                    .then(|| {
                        view! {
                            <fieldset class="children">
                                <legend>"Which child is this about?"</legend>
                                {children
                                    .into_iter()
                                    .map(|child| {
                                        let child_id = child.id.to_string();
                                        let box_id = format!("item-{id}-child-{child_id}");
                                        let checked = concerns(&child_id);
                                        let set_child = set_child.clone();
                                        view! {
                                            <div class="check">
                                                <input
                                                    type="checkbox"
                                                    id=box_id.clone()
                                                    prop:checked=checked
                                                    on:change=move |event| set_child(child_id.clone(), event_target_checked(&event))
                                                />
                                                <label for=box_id>{child.name}</label>
                                            </div>
                                        }
                                    })
                                    .collect_view()}
                            </fieldset>
                        }
                    })
            }}
            <div class="field">
                <label for=said_id.clone()>"Who said it"</label>
                <select id=said_id on:change=on_said_by>
                    {move || {
                        let current = said_by_now();
                        let mut options = vec![view! { <option value="" selected=current.is_empty()>"Not recorded"</option> }.into_any()];
                        options.extend(speakers().into_iter().map(|(value, words)| {
                            let selected = value == current;
                            view! { <option value=value selected=selected>{words}</option> }.into_any()
                        }));
                        options
                    }}
                </select>
            </div>
            <div class="field">
                <label for=agency_id.clone()>"Or an agency that is not here"</label>
                <input id=agency_id type="text" maxlength="100" on:change=on_agency/>
            </div>
            <div class="buttons">
                <button type="button" class="secondary" id=up_id aria-disabled=move || first().to_string() on:click=move_up>
                    "Move up"
                </button>
                <button type="button" class="secondary" id=down_id aria-disabled=move || last().to_string() on:click=move_down>
                    "Move down"
                </button>
                <button type="button" on:click=on_done>"Done"</button>
                <button type="button" class="danger" id=delete_id on:click=move |_| confirm_delete.set(true)>
                    "Delete"
                </button>
            </div>
            {move || {
                confirm_delete
                    .get()
                    .then(|| {
                        let delete = delete.clone();
                        let keep = keep.clone();
                        view! {
                            <div class="confirm" role="alert">
                                <p>"Delete this item for everyone?"</p>
                                <button type="button" class="danger" on:click=delete>"Yes, delete it"</button>
                                <button type="button" class="secondary" on:click=keep>"No, keep it"</button>
                            </div>
                        }
                    })
            }}
        </div>
    }
}
