//! Keys: what each key does in each mode (input line, overlays, panes).
//! Returns the [`Action`] the runtime must carry out, if any.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, DetailView, Focus, Input};

/// How far one key moves a selection or a scroll.
enum Move {
    By(isize),
    Page(isize),
    Top,
    Bottom,
}

fn movement(code: KeyCode) -> Option<Move> {
    Some(match code {
        KeyCode::Up | KeyCode::Char('k') => Move::By(-1),
        KeyCode::Down | KeyCode::Char('j') => Move::By(1),
        KeyCode::PageUp => Move::Page(-1),
        KeyCode::PageDown => Move::Page(1),
        KeyCode::Home | KeyCode::Char('g') => Move::Top,
        KeyCode::End | KeyCode::Char('G') => Move::Bottom,
        _ => return None,
    })
}

/// `cur` moved by `m` within `0..len` (a page is `page` items).
fn moved(cur: usize, len: usize, page: usize, m: &Move) -> usize {
    let last = len.saturating_sub(1);
    let step = |n: isize| {
        if n < 0 {
            cur.saturating_sub(n.unsigned_abs())
        } else {
            cur.saturating_add(n.unsigned_abs()).min(last)
        }
    };
    match m {
        Move::By(n) => step(*n),
        Move::Page(n) => step(n.saturating_mul(page.max(1) as isize)),
        Move::Top => 0,
        Move::Bottom => last,
    }
}

impl App {
    /// One key press. Key releases (reported on some platforms) are ignored.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
            self.quit = true;
            return Some(Action::Quit);
        }
        if self.input.is_some() {
            return self.input_key(key, ctrl);
        }
        if let Some(view) = &mut self.detail {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                self.detail = None;
            } else if let Some(m) = movement(key.code) {
                view.scroll = match m {
                    Move::Bottom => usize::MAX,
                    m => moved(view.scroll, usize::MAX, view.page, &m),
                };
            }
            return None;
        }
        if self.help {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('q' | '?')) {
                self.help = false;
            }
            return None;
        }
        self.pane_key(key)
    }

    fn input_key(&mut self, key: KeyEvent, ctrl: bool) -> Option<Action> {
        let filtering = self.input == Some(Input::Filter);
        match key.code {
            KeyCode::Esc => {
                if filtering {
                    self.filter.clear();
                }
                self.deny_text.clear();
                self.input = None;
            }
            KeyCode::Enter => match self.input.take() {
                Some(Input::Deny { pid, id }) => {
                    let reason = self.deny_text.trim().to_string();
                    self.deny_text.clear();
                    if let Some(h) = self
                        .held
                        .iter_mut()
                        .find(|h| h.pid == pid && h.approval.id == id)
                    {
                        h.sent = Some("denying…");
                    }
                    return Some(Action::Deny {
                        pid,
                        id,
                        reason: (!reason.is_empty()).then_some(reason),
                    });
                }
                Some(Input::Filter) | None => {}
            },
            KeyCode::Backspace => {
                if let Some(buf) = self.input_buf() {
                    buf.pop();
                }
            }
            KeyCode::Char('u') if ctrl => {
                if let Some(buf) = self.input_buf() {
                    buf.clear();
                }
            }
            KeyCode::Char('w') if ctrl => {
                if let Some(buf) = self.input_buf() {
                    let kept = buf.trim_end().rfind(' ').map_or(0, |i| i + 1);
                    buf.truncate(kept);
                }
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                self.type_char(c);
            }
            _ => {}
        }
        if filtering {
            // A new filter shows its newest match.
            self.views = [Default::default(); 2];
        }
        None
    }

    fn pane_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                return Some(Action::Quit);
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('/') => self.input = Some(Input::Filter),
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.views = [Default::default(); 2];
            }
            KeyCode::Char('p') => {
                self.paused = match self.paused {
                    Some(_) => None,
                    None => Some((self.requests.next_seq(), self.feed.next_seq())),
                };
            }
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(-1),
            KeyCode::Char('a') => return self.approve(),
            KeyCode::Char('d') => self.start_deny(),
            KeyCode::Enter => return self.open_detail(),
            code => {
                if let Some(m) = movement(code) {
                    self.move_selection(&m);
                }
            }
        }
        None
    }

    fn cycle_focus(&mut self, dir: isize) {
        let mut order = Vec::with_capacity(3);
        if !self.held.is_empty() {
            order.push(Focus::Approvals);
        }
        order.extend([Focus::Requests, Focus::Feed]);
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0);
        let next = (at as isize + dir).rem_euclid(order.len() as isize) as usize;
        self.focus = order.get(next).copied().unwrap_or(Focus::Requests);
        if self.focus != Focus::Approvals {
            self.focus_before = self.focus;
        }
    }

    /// `a` and `d` act on the queue only when it has focus, so that a key
    /// meant for another pane never decides a call; otherwise they focus it.
    fn queue_focused(&mut self) -> bool {
        if self.focus == Focus::Approvals && !self.held.is_empty() {
            return true;
        }
        if self.held.is_empty() {
            self.notice("nothing is waiting for approval", false);
        } else {
            self.focus_before = self.focus;
            self.focus = Focus::Approvals;
            self.notice(
                "approvals focused: a approves, d denies the selected call",
                false,
            );
        }
        false
    }

    fn approve(&mut self) -> Option<Action> {
        if !self.queue_focused() {
            return None;
        }
        let h = self.held.get_mut(self.held_sel)?;
        h.sent = Some("approving…");
        Some(Action::Approve {
            pid: h.pid,
            id: h.approval.id.clone(),
        })
    }

    fn start_deny(&mut self) {
        if !self.queue_focused() {
            return;
        }
        if let Some(h) = self.selected_held() {
            self.input = Some(Input::Deny {
                pid: h.pid,
                id: h.approval.id.clone(),
            });
            self.deny_text.clear();
        }
    }

    fn open_detail(&mut self) -> Option<Action> {
        let (pid, request_id) = match self.focus {
            Focus::Approvals => return None,
            Focus::Requests => {
                let list = self.visible_requests();
                let at = position(&list, self.views[0].sel);
                list.get(at).map(|(_, r)| (r.pid, r.request_id.clone()))?
            }
            Focus::Feed => {
                let list = self.visible_feed();
                let at = position(&list, self.views[1].sel);
                list.get(at).map(|(_, f)| (f.pid, f.request_id.clone()))?
            }
        };
        if request_id.is_empty() {
            self.notice("no request is recorded for this item", false);
            return None;
        }
        self.detail = Some(DetailView {
            pid,
            request_id: request_id.clone(),
            content: None,
            scroll: 0,
            page: 10,
            wrapped: None,
        });
        Some(Action::OpenDetail { pid, request_id })
    }

    fn move_selection(&mut self, m: &Move) {
        let table = match self.focus {
            Focus::Approvals => {
                self.held_sel = moved(self.held_sel, self.held.len(), 3, m);
                return;
            }
            Focus::Requests => 0,
            Focus::Feed => 1,
        };
        let seqs: Vec<u64> = if table == 0 {
            self.visible_requests().iter().map(|(s, _)| *s).collect()
        } else {
            self.visible_feed().iter().map(|(s, _)| *s).collect()
        };
        let view = &mut self.views[table];
        let cur = seqs.iter().position(|s| Some(*s) == view.sel).unwrap_or(0);
        let next = moved(cur, seqs.len(), view.page, m);
        // Back at the top, the selection follows the newest item again.
        view.sel = if next == 0 {
            None
        } else {
            seqs.get(next).copied()
        };
    }
}

/// Index of the anchored item in a pane's list (the top when it is gone).
pub(super) fn position<T>(list: &[(u64, T)], sel: Option<u64>) -> usize {
    sel.and_then(|s| list.iter().position(|(seq, _)| *seq == s))
        .unwrap_or(0)
}
