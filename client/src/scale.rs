//! The safety scale on the board, in the chair's tools and on the room view.
//!
//! Everything here is drawn from the shared document, which holds each scale's
//! words, where it is in its life and how many have scored; the scores arrive in it
//! only when the chair reveals them. Scoring itself happens on the phone page
//! (`/conference/<id>/score`, in `roundtable-phone`).

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_phone::score::ScaleResults;
use roundtable_shared::Role;
use roundtable_shared::scale::{ScaleEntry, ScaleStatus, ScaleSubject, ScaleWording, Wording};

use crate::api;
use crate::board::context::BoardContext;

/// "3 of 7 people have scored".
pub fn scored_words(scored: u32, voters: usize) -> String {
    if voters == 1 {
        format!("{scored} of 1 person has scored")
    } else {
        format!("{scored} of {voters} people have scored")
    }
}

/// The question in the words for `role`'s side of the table.
fn words_for(scale: &ScaleEntry, role: Role) -> &Wording {
    if role.is_family_side() {
        &scale.wording.family
    } else {
        &scale.wording.professionals
    }
}

/// The scale on the board: the question and the count while open, then the scores.
#[component]
pub fn ScalePanel(conference_id: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let role = context.role;
    let score_page = format!("/conference/{conference_id}/score");
    let current = Memo::new(move |_| snapshot.with(|s| s.current_scale().cloned()));
    let voters = Memo::new(move |_| snapshot.with(|s| s.voters()));
    let earlier = Memo::new(move |_| {
        snapshot.with(|s| {
            let current = s.current_scale().map(|c| c.id.clone());
            s.scales
                .iter()
                .rev()
                .filter(|e| e.status == ScaleStatus::Revealed && Some(&e.id) != current.as_ref())
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    move || {
        let scale = current.get()?;
        let score_page = score_page.clone();
        let words = words_for(&scale, role).clone();
        let body = match scale.status {
            ScaleStatus::Open => view! {
                <p class="question">{words.question}</p>
                <p class="anchors">
                    <span><strong>"0"</strong>" means: "{words.zero}</span>
                    <span><strong>"10"</strong>" means: "{words.ten}</span>
                </p>
                <p class="scored" role="status" aria-live="polite">
                    {move || current.with(|c| c.as_ref().map(|c| scored_words(c.scored, voters.get())))}
                </p>
                {role.votes().then(|| view! {
                    <p><a class="button" href=score_page>"Give your score"</a></p>
                })}
            }
            .into_any(),
            ScaleStatus::Closed => view! {
                <p class="question">{words.question}</p>
                <p role="status">"Scoring has finished. The chair will show everyone’s scores together."</p>
            }
            .into_any(),
            ScaleStatus::Revealed => view! {
                <ScaleResults results=scale.results.clone() previous=scale.previous.clone()/>
            }
            .into_any(),
        };
        Some(view! {
            <section class="scale-panel" aria-labelledby="scale-heading">
                <h2 id="scale-heading">{format!("Safety scale: {}", scale.about)}</h2>
                {body}
                <EarlierScales earlier/>
            </section>
        })
    }
}

/// Scales revealed before the one of the moment, folded away.
#[component]
fn EarlierScales(earlier: Memo<Vec<ScaleEntry>>) -> impl IntoView {
    move || {
        let earlier = earlier.get();
        (!earlier.is_empty()).then(|| {
            view! {
                <h3>"Earlier scales"</h3>
                {earlier
                    .into_iter()
                    .map(|scale| view! {
                        <details>
                            <summary>{format!("{}. {}", scale.number, scale.about)}</summary>
                            <ScaleResults results=scale.results previous=scale.previous/>
                        </details>
                    })
                    .collect_view()}
            }
        })
    }
}

/// The scale on the room view, while it is the business of the moment: open,
/// closed, or revealed during the safety scale stage.
#[component]
pub fn RoomScale(
    scale: Signal<Option<ScaleEntry>>,
    voters: Signal<usize>,
    scaling: Signal<bool>,
) -> impl IntoView {
    move || {
        let scale = scale.get()?;
        if scale.status == ScaleStatus::Revealed && !scaling.get() {
            return None;
        }
        let body = match scale.status {
            ScaleStatus::Open => view! {
                <p class="question">{scale.wording.professionals.question.clone()}</p>
                <p class="scored room-count" role="status">{scored_words(scale.scored, voters.get())}</p>
            }
            .into_any(),
            ScaleStatus::Closed => view! {
                <p class="question">{scale.wording.professionals.question.clone()}</p>
                <p class="room-count">{format!("Scoring has finished: {}", scored_words(scale.scored, voters.get()))}</p>
            }
            .into_any(),
            ScaleStatus::Revealed => view! {
                <ScaleResults results=scale.results.clone() previous=scale.previous.clone()/>
            }
            .into_any(),
        };
        Some(view! {
            <section class="room-scale" aria-labelledby="room-scale-heading">
                <h2 id="room-scale-heading">{format!("Safety scale: {}", scale.about)}</h2>
                {body}
            </section>
        })
    }
}

/// The chair's part: open a scale, follow the count, enter scores for people
/// without a phone, close it, and reveal the scores.
#[component]
pub fn ChairScale(conference_id: String) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    // The scale still to be finished: open, or closed and not yet revealed.
    let active = Memo::new(move |_| {
        snapshot.with(|s| {
            s.scales
                .iter()
                .find(|e| e.status != ScaleStatus::Revealed)
                .cloned()
        })
    });
    let (problem, set_problem) = signal(None::<String>);
    view! {
        <section class="chair-scale" aria-labelledby="chair-scale-heading">
            <h3 id="chair-scale-heading">"Safety scale"</h3>
            {move || match active.get() {
                None => view! { <OpenScale conference_id=conference_id.clone() set_problem/> }.into_any(),
                Some(scale) => view! {
                    <RunScale conference_id=conference_id.clone() scale set_problem/>
                }
                .into_any(),
            }}
            <div role="alert">{move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}</div>
        </section>
    }
}

/// Which scale the chair is about to open, as the form's select says it.
fn subject_of(choice: &str, statement: &str) -> ScaleSubject {
    match choice.split_once(':').map(|(kind, id)| (kind, id.parse())) {
        Some(("child", Ok(child))) => ScaleSubject::Child { child },
        _ if choice == "danger" => ScaleSubject::Danger {
            statement: statement.to_owned(),
        },
        _ => ScaleSubject::AllChildren,
    }
}

/// The form to open a scale, with the default words filled in and changeable.
#[component]
fn OpenScale(conference_id: String, set_problem: WriteSignal<Option<String>>) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let children = Memo::new(move |_| snapshot.with(|s| s.children.clone()));
    let first_choice = children.with_untracked(|c| match c.as_slice() {
        [only] => format!("child:{}", only.id),
        _ => "all".to_owned(),
    });
    let choice = RwSignal::new(first_choice);
    let statement = RwSignal::new(String::new());
    // Who or what is scored, in words, for the default questions.
    let about = Memo::new(move |_| {
        let choice = choice.get();
        match choice.split_once(':') {
            Some(("child", id)) => children.with(|c| {
                c.iter()
                    .find(|child| child.id.to_string() == id)
                    .map(|child| child.name.clone())
                    .unwrap_or_default()
            }),
            _ if choice == "danger" => "the children, with this danger in mind".to_owned(),
            _ => "the children".to_owned(),
        }
    });
    let fields: [RwSignal<String>; 6] = std::array::from_fn(|_| RwSignal::new(String::new()));
    // The words start from the defaults for whoever is scored.
    Effect::new(move |_| {
        let defaults = ScaleWording::defaults(&about.get());
        let values = [
            defaults.professionals.question,
            defaults.professionals.zero,
            defaults.professionals.ten,
            defaults.family.question,
            defaults.family.zero,
            defaults.family.ten,
        ];
        for (field, value) in fields.iter().zip(values) {
            field.set(value);
        }
    });
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let subject = subject_of(&choice.get_untracked(), &statement.get_untracked());
        let [pq, pz, pt, fq, fz, ft] = fields.map(|f| f.get_untracked());
        let wording = ScaleWording {
            professionals: Wording {
                question: pq,
                zero: pz,
                ten: pt,
            },
            family: Wording {
                question: fq,
                zero: fz,
                ten: ft,
            },
        };
        let conference_id = conference_id.clone();
        spawn_local(async move {
            set_problem.set(
                api::open_scale(&conference_id, subject, wording)
                    .await
                    .err()
                    .map(|e| e.to_string()),
            );
        });
    };
    let labels = [
        ("scale-pro-question", "Question for professionals"),
        ("scale-pro-zero", "For professionals, 0 means"),
        ("scale-pro-ten", "For professionals, 10 means"),
        ("scale-family-question", "Question for the family"),
        ("scale-family-zero", "For the family, 0 means"),
        ("scale-family-ten", "For the family, 10 means"),
    ];
    view! {
        <form class="open-scale" on:submit=submit>
            <label for="scale-subject">"What is scored"</label>
            <select id="scale-subject" on:change=move |e| choice.set(event_target_value(&e))>
                {move || {
                    let chosen = choice.get_untracked();
                    let mut options: Vec<(String, String)> = children
                        .get()
                        .into_iter()
                        .map(|c| (format!("child:{}", c.id), c.name))
                        .collect();
                    if options.len() > 1 {
                        options.push(("all".into(), "All the children together".into()));
                    }
                    options.push(("danger".into(), "A danger statement".into()));
                    options
                        .into_iter()
                        .map(|(value, words)| {
                            let selected = value == chosen;
                            view! { <option value=value selected=selected>{words}</option> }
                        })
                        .collect_view()
                }}
            </select>
            {move || (choice.get() == "danger").then(|| view! {
                <label for="scale-statement">"The danger statement"</label>
                <textarea id="scale-statement" rows="2"
                    prop:value=move || statement.get()
                    on:input=move |e| statement.set(event_target_value(&e))></textarea>
            })}
            <details>
                <summary>"Change the words"</summary>
                {fields
                    .into_iter()
                    .zip(labels)
                    .map(|(field, (id, label))| view! {
                        <label for=id>{label}</label>
                        <input id=id type="text" maxlength="300"
                            prop:value=move || field.get()
                            on:input=move |e| field.set(event_target_value(&e))/>
                    })
                    .collect_view()}
            </details>
            <button type="submit" class="button">"Open the scale"</button>
        </form>
    }
}

/// An open or closed scale: the count, scores entered for others, close, reveal.
#[component]
fn RunScale(
    conference_id: String,
    scale: ScaleEntry,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let me = context.me.clone();
    let id = scale.id.clone();
    let count = {
        let id = id.clone();
        Memo::new(move |_| {
            snapshot.with(|s| {
                let scored = s.scales.iter().find(|e| e.id == id).map_or(0, |e| e.scored);
                scored_words(scored, s.voters())
            })
        })
    };
    let open = scale.status == ScaleStatus::Open;
    let (to, button) = if open {
        ("close", "Close the scale")
    } else {
        ("reveal", "Show everyone’s scores")
    };
    let move_on = {
        let (conference_id, id) = (conference_id.clone(), id.clone());
        move |_| {
            let (conference_id, id) = (conference_id.clone(), id.clone());
            spawn_local(async move {
                set_problem.set(
                    api::move_scale_on(&conference_id, &id, to)
                        .await
                        .err()
                        .map(|e| e.to_string()),
                );
            });
        }
    };
    view! {
        <p>
            <strong>{scale.about.clone()}</strong>
            {if open { ": scoring is open. " } else { ": scoring has finished. " }}
            <span role="status" aria-live="polite">{count}</span>
        </p>
        {open.then(|| view! { <ScoreForSomeone conference_id=conference_id.clone() scale=id.clone() me=me.clone() set_problem/> })}
        <button type="button" class="button" on:click=move_on>{button}</button>
    }
}

/// The chair enters the score of someone without a phone.
#[component]
fn ScoreForSomeone(
    conference_id: String,
    scale: String,
    me: String,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let context = expect_context::<BoardContext>();
    let snapshot = context.snapshot;
    let people = Memo::new(move |_| {
        snapshot.with(|s| {
            s.roster
                .iter()
                .filter(|p| p.role.votes() && p.id.to_string() != me)
                .map(|p| (p.id.to_string(), format!("{} ({})", p.name, p.role.label())))
                .collect::<Vec<_>>()
        })
    });
    let person = RwSignal::new(String::new());
    let score = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let (done, set_done) = signal(None::<String>);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let who = person.get_untracked();
        let Ok(value) = score.get_untracked().parse::<u8>() else {
            set_problem.set(Some("Choose the score they gave, from 0 to 10.".into()));
            return;
        };
        if who.is_empty() {
            set_problem.set(Some("Choose whose score this is.".into()));
            return;
        }
        let name = people.with_untracked(|p| {
            p.iter()
                .find(|(id, _)| *id == who)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        });
        let (conference_id, scale, why) =
            (conference_id.clone(), scale.clone(), reason.get_untracked());
        spawn_local(async move {
            match api::score_for(&conference_id, &scale, &who, value, &why).await {
                Ok(()) => {
                    set_problem.set(None);
                    set_done.set(Some(format!("Score {value} entered for {name}.")));
                    reason.set(String::new());
                }
                Err(e) => set_problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <details class="score-for">
            <summary>"Enter a score for someone without a phone"</summary>
            <form on:submit=submit>
                <label for="proxy-person">"Whose score"</label>
                <select id="proxy-person" on:change=move |e| person.set(event_target_value(&e))>
                    <option value="">"Choose a person"</option>
                    {move || people.get().into_iter().map(|(id, name)| view! {
                        <option value=id>{name}</option>
                    }).collect_view()}
                </select>
                <label for="proxy-score">"Their score"</label>
                <select id="proxy-score" on:change=move |e| score.set(event_target_value(&e))>
                    <option value="">"Choose"</option>
                    {(0..=10).map(|n| view! { <option value=n.to_string()>{n}</option> }).collect_view()}
                </select>
                <label for="proxy-reason">"Why, in their words (optional)"</label>
                <input id="proxy-reason" type="text" maxlength="1000"
                    prop:value=move || reason.get()
                    on:input=move |e| reason.set(event_target_value(&e))/>
                <button type="submit" class="button">"Enter score"</button>
            </form>
            <p role="status">{move || done.get()}</p>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_reads_as_a_sentence() {
        assert_eq!(scored_words(3, 7), "3 of 7 people have scored");
        assert_eq!(scored_words(0, 1), "0 of 1 person has scored");
    }

    #[test]
    fn the_chosen_subject_becomes_the_commands_subject() {
        let child = "7d1f6c9e-4f0b-4a43-9a8e-0c1b2d3e4f50";
        assert_eq!(
            subject_of(&format!("child:{child}"), ""),
            ScaleSubject::Child {
                child: child.parse().unwrap()
            }
        );
        assert_eq!(subject_of("all", ""), ScaleSubject::AllChildren);
        assert_eq!(
            subject_of("danger", "Dad drinks"),
            ScaleSubject::Danger {
                statement: "Dad drinks".into()
            }
        );
    }
}
