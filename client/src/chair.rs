//! The chair's tools on the board: the stage of the meeting, the room view,
//! who is waiting in the lobby, and everyone's personal links.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_shared::model::{Phase, Role};

use crate::api::{self, Invited, NewParticipant, Participant, Waiting};

/// How often the chair's screen asks who is waiting in the lobby.
const LOBBY_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// Roles the chair can give someone they let in or invite (everyone but a
/// second chair).
pub fn roles_to_give() -> impl Iterator<Item = Role> {
    Role::ALL.into_iter().filter(|r| *r != Role::Chair)
}

/// The chair's panel above the board.
#[component]
pub fn ChairTools(conference_id: String, room_code: String) -> impl IntoView {
    let room_link = format!("/conference/{conference_id}/room");
    view! {
        <section class="chair-tools" aria-labelledby="chair-tools-heading">
            <h2 id="chair-tools-heading">"Running the meeting"</h2>
            <p>
                "Room code: " <span class="room-code">{room_code}</span> " · "
                <a href=room_link target="_blank" rel="noopener">
                    "Open the room view"
                    <span class="visually-hidden">" (opens in a new tab)"</span>
                </a>
            </p>
            <PhaseControl conference_id=conference_id.clone()/>
            <crate::scale::ChairScale conference_id=conference_id.clone()/>
            <crate::decision::ChairRecord conference_id=conference_id.clone()/>
            <Lobby conference_id=conference_id.clone()/>
            <People conference_id/>
        </section>
    }
}

/// Moves the meeting to another stage.
#[component]
fn PhaseControl(conference_id: String) -> impl IntoView {
    let context = expect_context::<crate::board::context::BoardContext>();
    let current = Memo::new(move |_| context.snapshot.with(|s| s.phase));
    let chosen = RwSignal::new(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let phase = match chosen.get_untracked() {
            phase if phase.is_empty() => next_phase(current.get_untracked()).as_str().to_owned(),
            phase => phase,
        };
        let conference_id = conference_id.clone();
        spawn_local(async move {
            set_problem.set(
                api::set_phase(&conference_id, &phase)
                    .await
                    .err()
                    .map(|e| e.to_string()),
            );
            chosen.set(String::new());
        });
    };
    view! {
        <form class="phase-control" on:submit=on_submit>
            <label for="phase-choice">"Stage of the meeting"</label>
            <select id="phase-choice" on:change=move |event| chosen.set(event_target_value(&event))>
                {move || {
                    let now = current.get();
                    let next = next_phase(now);
                    Phase::ALL
                        .into_iter()
                        .map(|phase| {
                            let selected = phase == next;
                            let words = if Some(phase) == now {
                                format!("{} (now)", phase.label())
                            } else {
                                phase.label().to_owned()
                            };
                            view! { <option value=phase.as_str() selected=selected>{words}</option> }
                        })
                        .collect_view()
                }}
            </select>
            <button type="submit">"Move the meeting on"</button>
            <div role="alert" class="alert-region">
                {move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}
            </div>
        </form>
    }
}

/// The stage after `now`: what the chair most likely wants next.
pub fn next_phase(now: Option<Phase>) -> Phase {
    let Some(now) = now else {
        return Phase::PreMeet;
    };
    let at = Phase::ALL.iter().position(|p| *p == now).unwrap_or(0);
    Phase::ALL.get(at + 1).copied().unwrap_or(now)
}

/// People waiting to be let in, who joined from the room code.
#[component]
fn Lobby(conference_id: String) -> impl IntoView {
    let (waiting, set_waiting) = signal(Vec::<Waiting>::new());
    let (problem, set_problem) = signal(None::<String>);
    let refresh = {
        let conference_id = conference_id.clone();
        move || {
            let conference_id = conference_id.clone();
            spawn_local(async move {
                match api::lobby(&conference_id).await {
                    Ok(people) => {
                        if waiting.get_untracked() != people {
                            set_waiting.set(people);
                        }
                    }
                    Err(error) => set_problem.set(Some(error.to_string())),
                }
            });
        }
    };
    refresh();
    if let Ok(interval) = set_interval_with_handle(refresh.clone(), LOBBY_EVERY) {
        on_cleanup(move || interval.clear());
    }
    view! {
        <section class="lobby" aria-labelledby="lobby-heading">
            <h3 id="lobby-heading">"Waiting to join"</h3>
            <div role="status" aria-live="polite">
                {move || {
                    let people = waiting.get();
                    if people.is_empty() {
                        view! { <p class="empty">"Nobody is waiting."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="waiting">
                                {people
                                    .into_iter()
                                    .map(|person| {
                                        view! {
                                            <WaitingPerson
                                                conference_id=conference_id.clone()
                                                person
                                                on_done=refresh.clone()
                                                set_problem
                                            />
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                        .into_any()
                    }
                }}
            </div>
            <div role="alert" class="alert-region">
                {move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}
            </div>
        </section>
    }
}

#[component]
fn WaitingPerson(
    conference_id: String,
    person: Waiting,
    on_done: impl Fn() + Clone + Send + Sync + 'static,
    set_problem: WriteSignal<Option<String>>,
) -> impl IntoView {
    let Waiting {
        participant: person,
        came_by: _,
        from_same_address,
        same_name_as,
    } = person;
    let role = RwSignal::new(Role::Parent.as_str().to_owned());
    let select_id = format!("lobby-role-{}", person.id);
    let let_in = {
        let (conference_id, pid, on_done) = (
            conference_id.clone(),
            person.id.to_string(),
            on_done.clone(),
        );
        move |_| {
            let (conference_id, pid, on_done) =
                (conference_id.clone(), pid.clone(), on_done.clone());
            spawn_local(async move {
                set_problem.set(
                    api::admit(&conference_id, &pid, &role.get_untracked())
                        .await
                        .err()
                        .map(|e| e.to_string()),
                );
                on_done();
            });
        }
    };
    let turn_away = {
        let pid = person.id.to_string();
        move |_| {
            let (conference_id, pid, on_done) =
                (conference_id.clone(), pid.clone(), on_done.clone());
            spawn_local(async move {
                set_problem.set(
                    api::turn_away(&conference_id, &pid)
                        .await
                        .err()
                        .map(|e| e.to_string()),
                );
                on_done();
            });
        }
    };
    let name = person.name.clone();
    // What the chair should know before letting them in: a name like an invited
    // person's may be someone posing as them, and many from one network a stranger.
    let posing = same_name_as.map(|invited| {
        view! {
            <p class="lobby-warning">
                "Has the same name as " <bdi>{invited.name}</bdi>
                ", who was invited. Check that it is them."
            </p>
        }
    });
    let crowd = from_same_address.filter(|n| *n > 1).map(|n| {
        view! { <p class="lobby-note">{n} " people waiting asked from the same network."</p> }
    });
    view! {
        <li>
            // Isolated, so that a name in a right-to-left script does not turn the
            // words around it.
            <strong><bdi>{person.name}</bdi></strong>
            <span class="lobby-note">"came with the room code"</span>
            <label for=select_id.clone()>
                "Let " {name.clone()} " in as"
            </label>
            <select id=select_id on:change=move |event| role.set(event_target_value(&event))>
                {roles_to_give()
                    .map(|r| {
                        view! { <option value=r.as_str() selected=r == Role::Parent>{r.label()}</option> }
                    })
                    .collect_view()}
            </select>
            <button type="button" on:click=let_in>
                "Let in" <span class="visually-hidden">" " {name.clone()}</span>
            </button>
            <button type="button" class="secondary" on:click=turn_away>
                "Turn away" <span class="visually-hidden">" " {name}</span>
            </button>
            {posing}
            {crowd}
        </li>
    }
}

/// Everyone invited, with a way to give them a new personal link, and to
/// invite someone else.
#[component]
fn People(conference_id: String) -> impl IntoView {
    let (people, set_people) = signal(Vec::<Participant>::new());
    let (link, set_link) = signal(None::<Invited>);
    let (problem, set_problem) = signal(None::<String>);
    let load = {
        let conference_id = conference_id.clone();
        move || {
            let conference_id = conference_id.clone();
            spawn_local(async move {
                match api::conference(&conference_id).await {
                    Ok(conference) => set_people.set(
                        conference
                            .participants
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|p| p.role != Some(Role::Chair))
                            .filter(|p| p.status.takes_part())
                            .collect(),
                    ),
                    Err(error) => set_problem.set(Some(error.to_string())),
                }
            });
        }
    };
    load();
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Professional.as_str().to_owned());
    let agency = RwSignal::new(String::new());
    let invite = {
        let conference_id = conference_id.clone();
        let load = load.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            let person = NewParticipant {
                name: name.get_untracked().trim().to_owned(),
                role: role.get_untracked(),
                agency: Some(agency.get_untracked().trim().to_owned()).filter(|a| !a.is_empty()),
            };
            if person.name.is_empty() {
                set_problem.set(Some("Enter the name of the person to invite.".to_owned()));
                return;
            }
            let (conference_id, load) = (conference_id.clone(), load.clone());
            spawn_local(async move {
                match api::invite(&conference_id, &person).await {
                    Ok(invited) => {
                        set_problem.set(None);
                        name.set(String::new());
                        agency.set(String::new());
                        set_link.set(Some(invited));
                        load();
                    }
                    Err(error) => set_problem.set(Some(error.to_string())),
                }
            });
        }
    };
    view! {
        <details class="people">
            <summary>"People and their links"</summary>
            <ul>
                {move || {
                    people
                        .get()
                        .into_iter()
                        .map(|person| {
                            let (conference_id, pid) = (conference_id.clone(), person.id.to_string());
                            let renew = move |_| {
                                let (conference_id, pid) = (conference_id.clone(), pid.clone());
                                spawn_local(async move {
                                    match api::new_link(&conference_id, &pid).await {
                                        Ok(invited) => set_link.set(Some(invited)),
                                        Err(error) => set_problem.set(Some(error.to_string())),
                                    }
                                });
                            };
                            let role = person.role.map_or("", Role::label);
                            let name = person.name.clone();
                            view! {
                                <li>
                                    {person.name} " (" {role}
                                    {person.agency.map(|a| format!(", {a}"))} ")"
                                    <button type="button" class="secondary small" on:click=renew>
                                        "New link" <span class="visually-hidden">" for " {name}</span>
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            {move || link.get().map(|invited| view! { <LinkToCopy invited/> })}
            <form class="invite" on:submit=invite>
                <h3>"Invite someone else"</h3>
                <div class="field">
                    <label for="invite-name">"Name"</label>
                    <input id="invite-name" type="text" maxlength="100" autocomplete="off" bind:value=name/>
                </div>
                <div class="field">
                    <label for="invite-role">"Role"</label>
                    <select id="invite-role" on:change=move |event| role.set(event_target_value(&event))>
                        {roles_to_give()
                            .map(|r| view! { <option value=r.as_str() selected=r == Role::Professional>{r.label()}</option> })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="invite-agency">"Agency (for professionals)"</label>
                    <input id="invite-agency" type="text" maxlength="100" autocomplete="off" bind:value=agency/>
                </div>
                <button type="submit">"Invite"</button>
            </form>
            <div role="alert" class="alert-region">
                {move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}
            </div>
        </details>
    }
}

/// A personal link, shown once, with a button that copies it.
#[component]
pub fn LinkToCopy(invited: Invited) -> impl IntoView {
    let field_id = format!("link-{}", invited.participant.id);
    let (copied, set_copied) = signal(false);
    let link = invited.join_link.clone();
    let copy = move |_| {
        let clipboard = window().navigator().clipboard();
        let promise = clipboard.write_text(&link);
        spawn_local(async move {
            let done = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
            set_copied.set(done);
        });
    };
    view! {
        <div class="link-to-copy">
            <label for=field_id.clone()>
                "Personal link for " {invited.participant.name.clone()}
            </label>
            <input id=field_id type="text" readonly value=invited.join_link.clone() class="join-link"/>
            <button type="button" class="secondary small" on:click=copy>
                "Copy link" <span class="visually-hidden">" for " {invited.participant.name}</span>
            </button>
            <span role="status">{move || copied.get().then_some("Copied")}</span>
            <p class="hint">"Send it only to this person: it lets them into the conference."</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_stage_follows_the_meeting_and_stops_at_the_end() {
        assert_eq!(next_phase(None), Phase::PreMeet);
        assert_eq!(next_phase(Some(Phase::PreMeet)), Phase::Introductions);
        assert_eq!(next_phase(Some(Phase::Closed)), Phase::Closed);
    }

    #[test]
    fn nobody_is_made_a_second_chair() {
        assert!(roles_to_give().all(|r| r != Role::Chair));
        assert_eq!(roles_to_give().count(), Role::ALL.len() - 1);
    }
}
