//! The safety scale page (`/conference/<id>/score`), made for a phone in one hand:
//! the question, what 0 and 10 mean, eleven large targets, an optional "why", and
//! a clear "sent". Nobody sees anyone else's score until the chair reveals them all
//! together; then [`ScaleResults`] shows every score, a chart and the middle score.
//!
//! The page follows the scales through a server-sent event stream
//! (`GET /api/conferences/{id}/scales/live`), which the browser reconnects by itself.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use roundtable_shared::Role;
use roundtable_shared::ScaleId;
use roundtable_shared::api::GiveScore;
use roundtable_shared::scale::{PreviousScores, RevealedScore, ScaleStatus, Summary};
use wasm_bindgen::{JsCast, closure::Closure};

use crate::http::{self, ApiError};
use crate::set_page_title;

pub use roundtable_shared::api::{ScaleView as Scale, Scales, YourScore};

/// What the page knows.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Loading,
    Ready(Scales),
    /// The person is no longer part of the conference.
    Gone,
}

/// `PUT /api/conferences/{id}/scales/{scale}/vote`.
async fn send_score(
    conference: &str,
    scale: ScaleId,
    score: u8,
    reason: &str,
) -> Result<YourScore, ApiError> {
    let body = http::to_json(&GiveScore {
        score: Some(score.into()),
        reason: Some(reason.to_owned()),
    })?;
    let answer = http::send(
        "PUT",
        &format!("/api/conferences/{conference}/scales/{scale}/vote"),
        Some(body),
    )
    .await?;
    http::parse(&answer)
}

/// Listens to the scale stream until the page goes away.
fn follow(conference_id: &str, set_state: WriteSignal<State>, set_connected: WriteSignal<bool>) {
    let url = format!("/api/conferences/{conference_id}/scales/live");
    let Ok(source) = web_sys::EventSource::new(&url) else {
        set_connected.set(false);
        return;
    };
    let on_scales =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data().as_string().unwrap_or_default();
            match serde_json::from_str::<Scales>(&data) {
                Ok(scales) => {
                    set_connected.set(true);
                    set_state.set(State::Ready(scales));
                }
                Err(error) => web_sys::console::error_1(
                    &format!("Roundtable: unexpected scales: {error}").into(),
                ),
            }
        });
    let gone_source = source.clone();
    let on_gone = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_| {
        gone_source.close();
        set_state.set(State::Gone);
    });
    // The browser reconnects by itself; say so while it does.
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |_| set_connected.set(false));
    let on_open = Closure::<dyn Fn(web_sys::Event)>::new(move |_| set_connected.set(true));
    let _ = source.add_event_listener_with_callback("scales", on_scales.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("gone", on_gone.as_ref().unchecked_ref());
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let closures = StoredValue::new_local((on_scales, on_gone, on_error, on_open));
    on_cleanup(move || {
        source.close();
        closures.dispose();
    });
}

/// What someone has chosen and typed on a scale but perhaps not sent yet. It outlives
/// the form: the page is drawn again whenever the scales change (someone removed,
/// another scale closed), and that must not take away a half-written reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Draft {
    chosen: Option<u8>,
    reason: String,
}

/// Drafts by scale id, for the life of the page.
#[derive(Clone, Copy)]
struct Drafts(StoredValue<std::collections::HashMap<ScaleId, Draft>>);

/// The safety scale page.
#[component]
pub fn ScorePage(conference_id: String) -> impl IntoView {
    set_page_title("Safety scale");
    provide_context(Drafts(StoredValue::new(Default::default())));
    let (state, set_state) = signal(State::Loading);
    let (connected, set_connected) = signal(true);
    follow(&conference_id, set_state, set_connected);
    let board = format!("/conference/{conference_id}");
    view! {
        <main id="main" class="phone">
            {move || match state.get() {
                State::Loading => view! {
                    <h1>"Safety scale"</h1>
                    <p role="status">"Opening…"</p>
                }
                .into_any(),
                State::Gone => view! {
                    <h1>"Safety scale"</h1>
                    <div role="alert">
                        <p class="lede">"You are no longer in this conference."</p>
                    </div>
                    <p>"If you think this is a mistake, please speak to the chair."</p>
                }
                .into_any(),
                State::Ready(scales) => view! {
                    <Current scales conference_id=conference_id.clone()/>
                }
                .into_any(),
            }}
            <p class="connection" role="status">
                {move || (!connected.get()).then_some("Reconnecting… Your score is safe once it says “Sent”.")}
            </p>
            <p><a href=board>"See the board"</a></p>
        </main>
    }
}

/// The scale of the moment, and the earlier ones.
#[component]
fn Current(scales: Scales, conference_id: String) -> impl IntoView {
    let earlier: Vec<Scale> = {
        let current = scales.current().map(|s| s.id);
        scales
            .scales
            .iter()
            .rev()
            .filter(|s| s.status == ScaleStatus::Revealed && Some(s.id) != current)
            .cloned()
            .collect()
    };
    let votes = scales.you.votes;
    let body = match scales.current().cloned() {
        None => view! {
            <h1>"Safety scale"</h1>
            <p class="lede">"When the chair asks, you will give your score here."</p>
            <p>"Keep this page open. It will change by itself."</p>
        }
        .into_any(),
        Some(scale) if scale.status == ScaleStatus::Open && votes => view! {
            <VoteForm scale conference_id/>
        }
        .into_any(),
        Some(scale) if scale.status == ScaleStatus::Open => view! {
            <h1>{scale.question}</h1>
            <p>"This screen does not give a score."</p>
        }
        .into_any(),
        Some(scale) if scale.status == ScaleStatus::Closed => view! {
            <h1>{scale.question.clone()}</h1>
            <p class="lede" role="status">"Scoring has finished. The chair will show everyone’s scores together."</p>
            {scale.your_score.map(|mine| view! { <p>"Your score: " <strong>{mine.score}</strong></p> })}
        }
        .into_any(),
        Some(scale) => view! {
            <h1>{format!("Scores for {}", scale.about)}</h1>
            <ScaleResults results=scale.results.unwrap_or_default() previous=scale.previous/>
        }
        .into_any(),
    };
    view! {
        {body}
        {(!earlier.is_empty()).then(|| view! {
            <section class="earlier">
                <h2>"Earlier scales"</h2>
                {earlier.into_iter().map(|scale| view! {
                    <details>
                        <summary>{format!("{}. {}", scale.number, scale.about)}</summary>
                        <ScaleResults results=scale.results.unwrap_or_default() previous=scale.previous/>
                    </details>
                }).collect_view()}
            </section>
        })}
    }
}

/// Eleven targets, an optional reason, and "Send my score".
#[component]
fn VoteForm(scale: Scale, conference_id: String) -> impl IntoView {
    let mine = scale.your_score.clone();
    let drafts = expect_context::<Drafts>().0;
    let draft = drafts
        .with_value(|d| d.get(&scale.id).cloned())
        .unwrap_or_else(|| Draft {
            chosen: mine.as_ref().map(|m| m.score),
            reason: mine
                .as_ref()
                .and_then(|m| m.reason.clone())
                .unwrap_or_default(),
        });
    let chosen = RwSignal::new(draft.chosen);
    let reason = RwSignal::new(draft.reason);
    {
        let id = scale.id;
        Effect::new(move |_| {
            let draft = Draft {
                chosen: chosen.get(),
                reason: reason.get(),
            };
            drafts.update_value(|d| {
                d.insert(id, draft);
            });
        });
    }
    let sent = RwSignal::new(mine.map(|m| m.score));
    let (sending, set_sending) = signal(false);
    let (problem, set_problem) = signal(None::<String>);
    let scale_id = scale.id;
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(score) = chosen.get_untracked() else {
            set_problem.set(Some("Choose a number from 0 to 10 first.".into()));
            return;
        };
        set_sending.set(true);
        set_problem.set(None);
        let (conference, scale) = (conference_id.clone(), scale_id);
        let why = reason.get_untracked();
        spawn_local(async move {
            match send_score(&conference, scale, score, &why).await {
                Ok(stored) => sent.set(Some(stored.score)),
                Err(error) => set_problem.set(Some(error.to_string())),
            }
            set_sending.set(false);
        });
    };
    view! {
        <h1 id="question">{scale.question}</h1>
        <form class="vote" on:submit=submit>
            <fieldset>
                <legend>"Your score"</legend>
                <p class="anchors">
                    <span><strong>"0"</strong>" means: "{scale.zero}</span>
                    <span><strong>"10"</strong>" means: "{scale.ten}</span>
                </p>
                <div class="targets">
                    {(0u8..=10).map(|n| {
                        let id = format!("score-{n}");
                        view! {
                            <input type="radio" name="score" id=id.clone() value=n.to_string()
                                prop:checked=move || chosen.get() == Some(n)
                                on:change=move |_| {
                                    chosen.set(Some(n));
                                    set_problem.set(None);
                                }/>
                            <label for=id>{n}</label>
                        }
                    }).collect_view()}
                </div>
            </fieldset>
            <label for="reason">"Why did you choose this number? (you can leave this empty)"</label>
            <textarea id="reason" rows="3" maxlength="1000"
                prop:value=move || reason.get()
                on:input=move |e| reason.set(event_target_value(&e))></textarea>
            <button type="submit" class="button send" disabled=move || sending.get()>
                {move || if sending.get() { "Sending…" } else if sent.get().is_some() { "Send my new score" } else { "Send my score" }}
            </button>
        </form>
        <div role="status" class="sent">
            {move || sent.get().map(|score| view! {
                <p class="lede"><strong>{format!("Sent. Your score is {score}.")}</strong></p>
                <p>"Nobody sees it until the chair shows everyone’s scores together. You can change it until the chair closes the scale."</p>
            })}
        </div>
        <div role="alert">{move || problem.get().map(|p| view! { <p class="problem">{p}</p> })}</div>
    }
}

/// How a person is named beside their score: their name and role.
fn who(score: &RevealedScore) -> String {
    match score.role {
        Role::Professional | Role::Chair | Role::MinuteTaker => {
            format!("{} ({})", score.name, score.role.label())
        }
        _ => format!("{} ({})", score.name, score.role.label().to_lowercase()),
    }
}

/// Words for the middle score and the range, e.g. "Middle score 5.5, from 3 to 8".
pub fn summary_words(summary: &Summary) -> String {
    match (summary.median, summary.lowest, summary.highest) {
        (Some(median), Some(low), Some(high)) => {
            let people = summary.counts.iter().sum::<u32>();
            let scores = if people == 1 { "1 score" } else { "scores" };
            let median = if median.fract() == 0.0 {
                format!("{median:.0}")
            } else {
                format!("{median:.1}")
            };
            if people == 1 {
                format!("{scores}: {median}")
            } else {
                format!(
                    "{people} {scores}. Middle score {median}, from {} to {}",
                    low.get(),
                    high.get()
                )
            }
        }
        _ => "Nobody gave a score.".to_owned(),
    }
}

/// Every revealed score with who gave it and why, a chart of how many gave each
/// number, and the middle score and range; the previous conference's beside them.
#[component]
pub fn ScaleResults(
    results: Vec<RevealedScore>,
    previous: Option<PreviousScores>,
) -> impl IntoView {
    let scores: Vec<_> = results.iter().map(|r| r.score).collect();
    let summary = Summary::of(&scores);
    view! {
        <div class="results">
            <p class="summary">{summary_words(&summary)}</p>
            <Chart summary=summary.clone()/>
            <ul class="scores">
                {results.into_iter().map(|r| view! {
                    <li>
                        <span class="score-number">{r.score.get()}</span>
                        <span class="score-who">{who(&r)}
                            {r.entered_by_chair.then_some(" – entered by the chair")}
                        </span>
                        {r.reason.clone().map(|why| view! { <span class="score-why">{format!("“{why}”")}</span> })}
                    </li>
                }).collect_view()}
            </ul>
            {previous.map(|before| {
                let earlier: Vec<_> = before.scores.iter().map(|r| r.score).collect();
                let held = before.held.get(..10).unwrap_or(&before.held).to_owned();
                view! {
                    <div class="previous">
                        <h3>{format!("At the last conference ({held})")}</h3>
                        <p>{summary_words(&Summary::of(&earlier))}</p>
                        <ul class="scores">
                            {before.scores.into_iter().map(|r| view! {
                                <li>
                                    <span class="score-number">{r.score.get()}</span>
                                    <span class="score-who">{who(&r)}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    </div>
                }
            })}
        </div>
    }
}

/// Bars for 0 to 10, as tall as the number of people who gave each score. The
/// list of scores says the same in words, so the picture is described briefly.
#[component]
fn Chart(summary: Summary) -> impl IntoView {
    let most = summary.counts.iter().copied().max().unwrap_or(0).max(1);
    let description = summary
        .counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(score, n)| {
            let people = if *n == 1 { "person" } else { "people" };
            format!("{n} {people} scored {score}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <figure class="chart" role="img" aria-label=format!("Chart of the scores: {description}.")>
            {summary.counts.iter().enumerate().map(|(score, n)| {
                // Heights in tenths, as classes: the Content Security Policy allows
                // no inline styles.
                let height = format!("bar h{}", (n * 10).div_ceil(most));
                view! {
                    <div class="bar-column" aria-hidden="true">
                        <span class="bar-count">{(*n > 0).then(|| n.to_string())}</span>
                        <span class=height></span>
                        <span class="bar-score">{score}</span>
                    </div>
                }
            }).collect_view()}
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roundtable_shared::Score;

    fn scores(values: &[i64]) -> Summary {
        let scores: Vec<Score> = values.iter().map(|v| Score::new(*v).unwrap()).collect();
        Summary::of(&scores)
    }

    #[test]
    fn the_summary_says_the_middle_and_the_range() {
        assert_eq!(
            summary_words(&scores(&[3, 8, 5, 6])),
            "4 scores. Middle score 5.5, from 3 to 8"
        );
        assert_eq!(
            summary_words(&scores(&[4, 4, 7])),
            "3 scores. Middle score 4, from 4 to 7"
        );
        assert_eq!(summary_words(&scores(&[9])), "1 score: 9");
        assert_eq!(summary_words(&scores(&[])), "Nobody gave a score.");
    }
}
