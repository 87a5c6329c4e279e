//! The HTTP matrix: every route of `api::router()`, tried by every caller, each answer
//! compared with what the caller should get (from `docs/api.md`: "who may call it").

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use reqwest::Method as Http;
use roundtable_shared::Role;
use serde_json::{Value, json};

use super::{Before, Credential, Mismatches, Scene, World};

/// Who is calling, one column of the matrix each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// The chair who created the conference.
    Chair,
    /// A chair who did not.
    OtherChair,
    /// A participant of the conference in a role other than chair.
    Role(Role),
    /// A professional of another conference.
    Elsewhere,
    /// Someone waiting in the lobby, not let in yet.
    Waiting,
    /// A removed participant's browser session, from before the removal.
    RemovedSession,
    /// A removed participant's join link, as a bearer token.
    RemovedLink,
    SignedOut,
}

/// The columns of [`rows`], in order.
pub(crate) const COLUMNS: [Who; 15] = [
    Who::Chair,
    Who::OtherChair,
    Who::Role(Role::MinuteTaker),
    Who::Role(Role::Professional),
    Who::Role(Role::Parent),
    Who::Role(Role::Carer),
    Who::Role(Role::Supporter),
    Who::Role(Role::Child),
    Who::Role(Role::Advocate),
    Who::Role(Role::RoomDisplay),
    Who::Elsewhere,
    Who::Waiting,
    Who::RemovedSession,
    Who::RemovedLink,
    Who::SignedOut,
];

pub(crate) fn column(who: Who) -> usize {
    COLUMNS.iter().position(|w| *w == who).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
    /// A WebSocket upgrade (a GET); `101` when it is accepted.
    Upgrade,
}

impl Method {
    pub(crate) fn changes(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Delete)
    }
}

/// One command or read, and what each caller should get.
pub(crate) struct Row {
    pub method: Method,
    /// With `{id}` (the conference), `{unknown}` (no conference), `{pid}` (someone in
    /// it), `{chair_pid}`, `{removed_pid}`, `{display_pid}`, `{waiting}` (someone in its
    /// lobby), `{scale}`, `{child}`, and `{b_…}` for the other conference's.
    pub path: &'static str,
    pub body: fn(&Scene) -> Option<Value>,
    pub before: Before,
    /// The status each of [`COLUMNS`] should get.
    pub expect: [u16; 15],
    /// The answer is about the caller (who they are, the link or code they hold), not
    /// about a conference, so it may name the conference to anyone.
    pub about_caller: bool,
}

fn none(_: &Scene) -> Option<Value> {
    None
}

fn score(_: &Scene) -> Option<Value> {
    Some(json!({ "score": 5, "reason": "Things are better" }))
}

fn row(
    method: Method,
    path: &'static str,
    before: Before,
    body: fn(&Scene) -> Option<Value>,
    expect: [u16; 15],
) -> Row {
    Row {
        method,
        path,
        body,
        before,
        expect,
        about_caller: false,
    }
}

fn about_caller(mut row: Row) -> Row {
    row.about_caller = true;
    row
}

use Before::{Closed, ClosedScale, ClosedWithOpenScale, Nothing, OpenScale};
use Method::{Delete, Get, Post, Put, Upgrade};

/// The matrix. Columns, as [`COLUMNS`]: the conference's chair (chr), another chair
/// (oth), minute-taker, professional, parent, carer, supporter, child, advocate, room
/// display (dsp), a professional of another conference (els), someone waiting in the
/// lobby (wai), a removed participant's old session (rmS) and link (rmL), signed out.
#[rustfmt::skip]
pub(crate) fn rows() -> Vec<Row> {
    vec![
        //                                                                                            chr  oth  mt   pro  par  car  sup  chi  adv  dsp  els  wai  rmS  rmL  out
        // Anyone.
        about_caller(row(Get,    "/health",                                  Nothing, none,          [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200])),
        about_caller(row(Post,   "/api/session",                             Nothing, |_| Some(json!({ "email": crate::helpers::CHAIR_EMAIL, "password": crate::helpers::CHAIR_PASSWORD })),
                                                                                                      [204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204])),
        about_caller(row(Post,   "/api/session",                             Nothing, |_| Some(json!({ "email": crate::helpers::CHAIR_EMAIL, "password": "not the password" })),
                                                                                                      [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401])),
        about_caller(row(Delete, "/api/session",                             Nothing, none,          [204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 204])),
        about_caller(row(Get,    "/api/me",                                  Nothing, none,          [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 410, 401])),
        about_caller(row(Post,   "/api/join",                                Nothing, |s| Some(json!({ "token": s.target.token })),
                                                                                                      [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200])),
        about_caller(row(Post,   "/api/join",                                Nothing, |s| Some(json!({ "token": s.removed.token })),
                                                                                                      [410, 410, 410, 410, 410, 410, 410, 410, 410, 410, 410, 410, 410, 410, 410])),
        about_caller(row(Post,   "/api/lobby",                               Nothing, |s| Some(json!({ "room_code": s.room_code, "name": "Pat Neighbour" })),
                                                                                                      [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201])),
        about_caller(row(Post,   "/api/lobby",                               Closed,  |s| Some(json!({ "room_code": s.room_code, "name": "Pat Neighbour" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404])),
        row(Get,    "/api/nothing-here",                                     Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),

        // Chairs' own conferences.
        row(Get,    "/api/conferences",                                      Nothing, none,          [200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences",                                      Nothing, |_| Some(json!({ "title": "Another", "kind": "initial", "scheduled_start": super::HELD, "children": [{ "name": "Alex" }] })),
                                                                                                      [201, 201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // A chair's own account.
        row(Get,    "/api/account/events",                                   Nothing, none,          [200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // One conference: its chair, and its invited or admitted participants.
        row(Get,    "/api/conferences/{id}",                                 Nothing, none,          [200, 403, 200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/phase",                           Nothing, |_| Some(json!({ "phase": "information_sharing" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // People.
        row(Post,   "/api/conferences/{id}/participants",                    Nothing, |_| Some(json!({ "name": "Nina Aunt", "role": "carer" })),
                                                                                                      [201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Delete, "/api/conferences/{id}/participants/{pid}",              Nothing, none,          [204, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/participants/{pid}/link",         Nothing, none,          [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Get,    "/api/conferences/{id}/lobby",                           Nothing, none,          [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{waiting}/admit",           Nothing, |_| Some(json!({ "role": "carer" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{waiting}/turn-away",       Nothing, none,          [204, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // The safety scale.
        row(Get,    "/api/conferences/{id}/scales",                          OpenScale, none,        [200, 403, 200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 401, 410, 401]),
        row(Get,    "/api/conferences/{id}/scales/live",                     OpenScale, none,        [200, 403, 200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales",                          Nothing, |_| Some(json!({ "subject": { "kind": "all_children" } })),
                                                                                                      [201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/vote",             OpenScale, score,       [200, 403, 200, 200, 200, 200, 200, 200, 200, 422, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{pid}",      OpenScale, score,       [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales/{scale}/close",            OpenScale, none,        [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales/{scale}/reveal",           ClosedScale, none,      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // The decision and the record. The chair's alone (docs/api.md), although
        // DESIGN.md's table of roles has the minute-taker write "plan & decisions" too:
        // the minute-taker writes the plan in the document, but records no decision.
        row(Put,    "/api/conferences/{id}/decisions/{child}",               Nothing, |_| Some(json!({ "outcome": "child_in_need_plan" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/attendance/{pid}",                Nothing, |_| Some(json!({ "status": "present" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/next-meetings",                   Nothing, |_| Some(json!({ "core_group_by": "2026-12-10", "review_by": "2027-02-22" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/close",                           Nothing, none,          [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/reopen",                          Closed, none,           [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/reopen",                          Nothing, none,          [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Get,    "/api/conferences/{id}/record",                          Nothing, none,          [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Get,    "/api/conferences/{id}/audit",                           Nothing, none,          [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // The documents: the shared one for everyone in the conference, the restricted
        // one never for the family's side or the room display.
        row(Upgrade, "/api/conferences/{id}/sync",                           Nothing, none,          [101, 403, 101, 101, 101, 101, 101, 101, 101, 101, 403, 403, 401, 410, 401]),
        row(Upgrade, "/api/conferences/{id}/restricted/sync",                Nothing, none,          [101, 403, 101, 101, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // A closed conference: reading goes on; the people can still be changed;
        // nothing else (409 for whoever could do it, and still 403 for everyone else).
        row(Get,    "/api/conferences/{id}",                                 Closed, none,           [200, 403, 200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 401, 410, 401]),
        row(Upgrade, "/api/conferences/{id}/sync",                           Closed, none,           [101, 403, 101, 101, 101, 101, 101, 101, 101, 101, 403, 403, 401, 410, 401]),
        row(Get,    "/api/conferences/{id}/record",                          Closed, none,           [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/phase",                           Closed, |_| Some(json!({ "phase": "decision" })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales",                          Closed, |_| Some(json!({ "subject": { "kind": "all_children" } })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/vote",             ClosedWithOpenScale, score,
                                                                                                      [409, 403, 409, 409, 409, 409, 409, 409, 409, 422, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{pid}",      ClosedWithOpenScale, score,
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales/{scale}/close",            ClosedWithOpenScale, none,
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/decisions/{child}",               Closed, |_| Some(json!({ "outcome": "no_plan" })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/attendance/{pid}",                Closed, |_| Some(json!({ "status": "absent" })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/next-meetings",                   Closed, |_| Some(json!({ "core_group_by": "2026-12-10", "review_by": "2027-02-22" })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/close",                           Closed, none,           [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/participants",                    Closed, |_| Some(json!({ "name": "Nina Aunt", "role": "carer" })),
                                                                                                      [201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Delete, "/api/conferences/{id}/participants/{pid}",              Closed, none,           [204, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{waiting}/admit",           Closed, |_| Some(json!({ "role": "carer" })),
                                                                                                      [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // Someone who cannot be acted on that way.
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{waiting}",  OpenScale, score,       [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{removed_pid}", OpenScale, score,    [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{display_pid}", OpenScale, score,    [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/attendance/{waiting}",            Nothing, |_| Some(json!({ "status": "present" })),
                                                                                                      [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/participants/{removed_pid}/link", Nothing, none,          [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/participants/{chair_pid}/link",   Nothing, none,          [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Delete, "/api/conferences/{id}/participants/{chair_pid}",        Nothing, none,          [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{pid}/admit",               Nothing, |_| Some(json!({ "role": "carer" })),
                                                                                                      [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{pid}/turn-away",           Nothing, none,          [409, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // What belongs to the other conference, through this one's address.
        row(Delete, "/api/conferences/{id}/participants/{b_pid}",            Nothing, none,          [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/participants/{b_pid}/link",       Nothing, none,          [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{b_waiting}/admit",         Nothing, |_| Some(json!({ "role": "carer" })),
                                                                                                      [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/lobby/{b_waiting}/turn-away",     Nothing, none,          [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{b_scale}/vote",           OpenScale, score,       [404, 403, 404, 404, 404, 404, 404, 404, 404, 422, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/scales/{scale}/votes/{b_pid}",    OpenScale, score,       [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales/{b_scale}/close",          Nothing, none,          [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Post,   "/api/conferences/{id}/scales/{b_scale}/reveal",         Nothing, none,          [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/decisions/{b_child}",             Nothing, |_| Some(json!({ "outcome": "no_plan" })),
                                                                                                      [422, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),
        row(Put,    "/api/conferences/{id}/attendance/{b_pid}",              Nothing, |_| Some(json!({ "status": "present" })),
                                                                                                      [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 410, 401]),

        // A conference that does not exist: who is calling is checked first.
        row(Get,    "/api/conferences/{unknown}",                            Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/phase",                      Nothing, |_| Some(json!({ "phase": "information_sharing" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/participants",               Nothing, |_| Some(json!({ "name": "Nina Aunt", "role": "carer" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Delete, "/api/conferences/{unknown}/participants/{pid}",         Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/participants/{pid}/link",    Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Get,    "/api/conferences/{unknown}/lobby",                      Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/lobby/{waiting}/admit",      Nothing, |_| Some(json!({ "role": "carer" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/lobby/{waiting}/turn-away",  Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Get,    "/api/conferences/{unknown}/scales",                     Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Get,    "/api/conferences/{unknown}/scales/live",                Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/scales",                     Nothing, |_| Some(json!({ "subject": { "kind": "all_children" } })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Put,    "/api/conferences/{unknown}/scales/{scale}/vote",        OpenScale, score,       [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Put,    "/api/conferences/{unknown}/scales/{scale}/votes/{pid}", OpenScale, score,       [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/scales/{scale}/close",       OpenScale, none,        [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/scales/{scale}/reveal",      ClosedScale, none,      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Put,    "/api/conferences/{unknown}/decisions/{child}",          Nothing, |_| Some(json!({ "outcome": "no_plan" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Put,    "/api/conferences/{unknown}/attendance/{pid}",           Nothing, |_| Some(json!({ "status": "present" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Put,    "/api/conferences/{unknown}/next-meetings",              Nothing, |_| Some(json!({ "core_group_by": "2026-12-10", "review_by": "2027-02-22" })),
                                                                                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/close",                      Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Post,   "/api/conferences/{unknown}/reopen",                     Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Get,    "/api/conferences/{unknown}/record",                     Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Get,    "/api/conferences/{unknown}/audit",                      Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Upgrade, "/api/conferences/{unknown}/sync",                      Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
        row(Upgrade, "/api/conferences/{unknown}/restricted/sync",           Nothing, none,          [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401, 410, 401]),
    ]
}

/// The path of a row, with the scene's ids in place.
pub(crate) fn fill(world: &World, scene: &Scene, path: &str) -> String {
    let b = &world.elsewhere;
    let scale = scene
        .scale
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    path.replace("{id}", &scene.conference)
        .replace("{unknown}", "4c1b3f8e-2f0a-4a43-9d7e-0c6f3b9a1e55")
        .replace("{pid}", &scene.target.id)
        .replace("{chair_pid}", &scene.chair_pid)
        .replace("{removed_pid}", &scene.removed.id)
        .replace("{display_pid}", &scene.person(Role::RoomDisplay).id)
        .replace("{waiting}", &scene.waiting_target)
        .replace("{scale}", &scale)
        .replace("{child}", &scene.child)
        .replace("{b_pid}", &b.professional.id)
        .replace("{b_waiting}", &b.waiting)
        .replace("{b_scale}", &b.scale)
        .replace("{b_child}", &b.child)
}

/// One caller of a column: participants in the conference and in the other one are
/// tried both with the session their browser got and with their link.
pub(crate) struct Caller {
    pub who: Who,
    pub label: String,
    pub credential: Credential,
}

pub(crate) fn callers(scene: &Scene) -> Vec<Caller> {
    let mut callers = Vec::new();
    for who in COLUMNS {
        let mut add = |label: String, credential: Credential| {
            callers.push(Caller {
                who,
                label,
                credential,
            })
        };
        match who {
            Who::Chair => add("the chair".into(), scene.chair.clone()),
            Who::OtherChair => add("another chair".into(), scene.other_chair.clone()),
            Who::Role(role) => {
                let person = scene.person(role);
                add(format!("{} (session)", role.as_str()), person.cookie());
                add(format!("{} (link)", role.as_str()), person.link());
            }
            Who::Elsewhere => {
                let person = &scene.elsewhere;
                add(
                    "another conference's professional (session)".into(),
                    person.cookie(),
                );
                add(
                    "another conference's professional (link)".into(),
                    person.link(),
                );
            }
            Who::Waiting => add("someone waiting in the lobby".into(), scene.waiting.clone()),
            Who::RemovedSession => add("removed (old session)".into(), scene.removed.cookie()),
            Who::RemovedLink => add("removed (link)".into(), scene.removed.link()),
            Who::SignedOut => add("signed out".into(), Credential::Nobody),
        }
    }
    callers
}

/// Sends a row's request as `who`: the status, and the body if it is worth reading.
pub(crate) async fn answer(
    world: &World,
    scene: &Scene,
    row: &Row,
    who: &Credential,
) -> (u16, String) {
    answer_with(world, scene, row, who, &[]).await
}

/// The same, with further request headers.
pub(crate) async fn answer_with(
    world: &World,
    scene: &Scene,
    row: &Row,
    who: &Credential,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let path = fill(world, scene, row.path);
    let http = match row.method {
        Method::Get | Method::Upgrade => Http::GET,
        Method::Post => Http::POST,
        Method::Put => Http::PUT,
        Method::Delete => Http::DELETE,
    };
    let mut request = who.apply(world.http.request(http, world.app.url(&path)));
    if row.method == Method::Upgrade {
        request = request
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = (row.body)(scene) {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let streams = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    if status == 101 || streams {
        return (status, String::new());
    }
    (status, response.text().await.unwrap_or_default())
}

/// Whether a row's success changes the conference, so that it needs one of its own.
fn needs_own_scene(row: &Row) -> bool {
    row.method.changes() && row.expect.iter().any(|s| (200..300).contains(s))
}

fn member(who: Who) -> bool {
    matches!(who, Who::Chair | Who::Role(_))
}

/// Every route the server declares, as (method, path with each `{…}` as `{}`).
fn declared_routes() -> Vec<(String, String)> {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![source.join("lib.rs")];
    for entry in std::fs::read_dir(source.join("api")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut routes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices(".route(") {
            let call = &text[at + ".route(".len()..];
            let path = call.split('"').nth(1).unwrap();
            // The handlers: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
            let handlers = &call[..end];
            if path.contains('*') {
                continue; // The answer for addresses that are not there.
            }
            for method in ["get", "post", "put", "delete"] {
                let called = handlers
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
                if called {
                    routes.push((method.to_owned(), normalised(path)));
                }
            }
        }
    }
    routes
}

/// A path with each `{…}` as `{}`.
fn normalised(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn the_matrix_has_rows_for_every_route_the_server_declares() {
    let declared = declared_routes();
    assert!(declared.len() > 30, "the routes are found: {declared:?}");
    let rows: Vec<(String, String)> = rows()
        .iter()
        .map(|row| {
            let method = match row.method {
                Method::Get | Method::Upgrade => "get",
                Method::Post => "post",
                Method::Put => "put",
                Method::Delete => "delete",
            };
            (method.to_owned(), normalised(row.path))
        })
        .collect();
    let missing: Vec<_> = declared.iter().filter(|r| !rows.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the matrix: {missing:?}"
    );
}

#[tokio::test]
async fn every_command_and_read_answers_each_caller_as_their_role_allows() {
    let world = World::new().await;
    let mut shared: HashMap<Before, Scene> = HashMap::new();
    let mut mismatches = Mismatches::default();
    let rows = rows();
    let mut columns_tried = 0;
    for row in &rows {
        let own;
        let scene = if needs_own_scene(row) {
            own = world.scene(row.before).await;
            &own
        } else {
            if let Entry::Vacant(vacant) = shared.entry(row.before) {
                vacant.insert(world.scene(row.before).await);
            }
            &shared[&row.before]
        };
        let mut callers = callers(scene);
        columns_tried = callers.len();
        // Those who should be refused go first, so that nobody's success changes what
        // the others are refused.
        callers.sort_by_key(|c| (200..300).contains(&row.expect[column(c.who)]));
        for caller in &callers {
            let expected = row.expect[column(caller.who)];
            let (status, body) = answer(&world, scene, row, &caller.credential).await;
            let what = format!("{:?} {} by {}", row.method, row.path, caller.label);
            mismatches.check(
                what.clone(),
                &expected.to_string(),
                &status.to_string(),
                &body,
            );
            // Nobody outside the conference is shown anything of it.
            if !row.about_caller
                && !member(caller.who)
                && (200..300).contains(&status)
                && body.contains(&scene.conference)
            {
                mismatches.note(format!("{what}: the answer shows the conference {body}"));
            }
        }
    }
    println!(
        "access matrix: {} HTTP cases checked ({} rows × {columns_tried} callers)",
        mismatches.checked,
        rows.len(),
    );
    mismatches.assert_none("HTTP");
}
