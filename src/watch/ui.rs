//! Drawing `hoopctl watch`: header, panes, footer and overlays. Reads the
//! [`App`]; the only state it writes back is scroll positions and page
//! sizes, which depend on the terminal size.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Focus, Input};
use super::cells::Badge;
use super::panes;
use super::text;

/// Below this the panes cannot be laid out; a message asks for more room.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 8;

/// Styles, with and without colors (`NO_COLOR`: modifiers only).
#[derive(Clone, Copy)]
pub(super) struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// `fg` on `bg` in color; `plain` without.
    pub fn pill(self, fg: Color, bg: Color, plain: Modifier) -> Style {
        if self.color {
            Style::new().fg(fg).bg(bg).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(plain)
        }
    }

    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn pane_title(self, focused: bool) -> Style {
        if focused {
            self.pill(
                Color::Black,
                Color::Cyan,
                Modifier::BOLD | Modifier::REVERSED,
            )
        } else {
            self.bold()
        }
    }

    pub fn badge(self, b: Badge) -> Style {
        let strong = Modifier::BOLD | Modifier::REVERSED;
        match b {
            Badge::Allowed => self.fg(Color::Green),
            Badge::Approved => self.fg(Color::Green).add_modifier(Modifier::BOLD),
            Badge::Blocked => self.pill(Color::White, Color::Red, strong),
            Badge::Denied if self.color => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Badge::Denied => Style::new().add_modifier(strong),
            Badge::Waiting => self.pill(
                Color::Black,
                Color::Yellow,
                Modifier::BOLD | Modifier::UNDERLINED,
            ),
            Badge::Other => Style::new(),
        }
    }

    pub fn status(self, code: Option<u16>) -> Style {
        match code {
            Some(200..=299) => self.fg(Color::Green),
            Some(300..=399) => self.fg(Color::Cyan),
            Some(400..=499) => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Some(_) => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            None => self.dim(),
        }
    }

    pub fn error(self) -> Style {
        self.pill(
            Color::White,
            Color::Red,
            Modifier::BOLD | Modifier::REVERSED,
        )
    }
}

/// Cuts styled pieces to `max` columns, the last one ending in `…`.
pub(super) fn fit_spans(pieces: Vec<(String, Style)>, max: usize) -> Line<'static> {
    let mut used = 0;
    let mut out = Vec::with_capacity(pieces.len());
    for (s, style) in pieces {
        let w = text::width(&s);
        if used + w <= max {
            used += w;
            out.push(Span::styled(s, style));
        } else {
            out.push(Span::styled(text::fit(&s, max - used), style));
            break;
        }
    }
    Line::from(out)
}

/// `r` shrunk to at most `w`×`h`, centered.
fn centered(r: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(r.width), h.min(r.height));
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}

/// Draws the whole screen. Never panics, whatever the size.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.is_empty() {
        return;
    }
    let theme = Theme { color: app.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small ({}x{}); enlarge it",
            area.width, area.height
        );
        let lines = text::wrap(&msg, usize::from(area.width)).len() as u16;
        let at = centered(area, area.width, lines);
        let p = Paragraph::new(msg)
            .style(theme.bold())
            .centered()
            .wrap(Wrap { trim: true });
        frame.render_widget(p, at);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app, theme);
    panes::draw_body(frame, body, app, theme);
    draw_footer(frame, footer, app, theme);
    if app.detail.is_some() {
        draw_detail(frame, body, app, theme);
    } else if app.help {
        draw_help(frame, body, theme);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, t: Theme) {
    let w = usize::from(area.width);
    let mut top = vec![
        (
            " hoopctl watch ".to_string(),
            t.pill(
                Color::Black,
                Color::Cyan,
                Modifier::BOLD | Modifier::REVERSED,
            ),
        ),
        (" ".into(), Style::new()),
    ];
    let up = app.proxies.values().filter(|p| p.gone.is_none()).count();
    if app.proxies.is_empty() {
        top.push((
            "no proxy attached: start one with `hoopctl connect claude-code`".into(),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    } else {
        let noun = if up == 1 { "proxy" } else { "proxies" };
        top.push((format!("{up} {noun}"), t.bold()));
        for (pid, p) in &app.proxies {
            let profile = match p.profile.as_str() {
                "" | "default" => String::new(),
                other => format!(" [{other}]"),
            };
            match &p.gone {
                None => {
                    top.push(("  ● ".into(), t.fg(Color::Green)));
                    top.push((format!("{pid} {}{profile}", p.listen), Style::new()));
                }
                Some(why) => {
                    let down = t.fg(Color::Red).add_modifier(Modifier::BOLD);
                    top.push(("  ○ ".into(), down));
                    top.push((format!("{pid} gone: {why}"), down));
                }
            }
        }
    }
    let clock = if app.now_ms > 0 {
        format!(" {} UTC ", text::hms(app.now_ms))
    } else {
        String::new()
    };
    let room = w.saturating_sub(text::width(&clock));
    let [line1, line2] = Layout::vertical([Constraint::Length(1); 2]).areas(area);
    frame.render_widget(fit_spans(top, room), line1);
    if !clock.is_empty() && room > 20 {
        let at = Rect::new(line1.x + room as u16, line1.y, line1.width - room as u16, 1);
        frame.render_widget(Span::styled(clock, t.dim()), at);
    }

    let mut second = vec![
        (" requests ".to_string(), t.dim()),
        (app.total_requests.to_string(), t.bold()),
        ("  blocked ".into(), t.dim()),
    ];
    let blocked = if app.total_blocked > 0 {
        t.fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        t.bold()
    };
    second.push((app.total_blocked.to_string(), blocked));
    second.push(("  waiting ".into(), t.dim()));
    let waiting = if app.held.is_empty() {
        t.bold()
    } else {
        t.pill(
            Color::Black,
            Color::Yellow,
            Modifier::BOLD | Modifier::REVERSED,
        )
    };
    second.push((app.held.len().to_string(), waiting));
    if app.paused.is_some() {
        second.push(("   ".into(), Style::new()));
        let n = app.new_since_pause();
        second.push((
            format!(" ⏸ PAUSED · {n} new "),
            t.pill(
                Color::Black,
                Color::Magenta,
                Modifier::BOLD | Modifier::REVERSED,
            ),
        ));
    }
    if !app.filter.is_empty() {
        second.push(("   filter ".into(), t.dim()));
        second.push((
            format!("“{}”", app.filter),
            t.fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        ));
    }
    frame.render_widget(fit_spans(second, w), line2);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, t: Theme) {
    let w = usize::from(area.width);
    let key = t.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let hints: &[(&str, &str)] = match (&app.input, app.detail.is_some(), app.help) {
        (Some(Input::Filter), _, _) => &[("Enter", "keep"), ("Esc", "clear")],
        (Some(Input::Deny { .. }), _, _) => &[("Enter", "send deny"), ("Esc", "cancel")],
        (None, true, _) => &[("↑↓ PgUp PgDn", "scroll"), ("Esc", "close")],
        (None, false, true) => &[("Esc", "close help")],
        (None, false, false) if app.focus == Focus::Approvals => &[
            ("a", "approve"),
            ("d", "deny"),
            ("↑↓", "select"),
            ("Tab", "pane"),
            ("?", "help"),
            ("q", "quit"),
        ],
        (None, false, false) => &[
            ("↑↓", "select"),
            ("Enter", "details"),
            ("/", "filter"),
            (
                "p",
                if app.paused.is_some() {
                    "resume"
                } else {
                    "pause"
                },
            ),
            ("Tab", "pane"),
            ("?", "help"),
            ("q", "quit"),
        ],
    };
    let mut pieces = Vec::new();
    if app.input == Some(Input::Filter) {
        pieces.push((" filter › ".to_string(), t.bold()));
        let room = w.saturating_sub(12 + 24);
        let shown = tail(&app.filter, room);
        let x = area.x + (10 + text::width(&shown)).min(w.saturating_sub(1)) as u16;
        frame.set_cursor_position(Position::new(x, area.y));
        pieces.push((shown, t.fg(Color::Cyan).add_modifier(Modifier::UNDERLINED)));
        pieces.push(("  ".into(), Style::new()));
    } else if let Some(n) = &app.notice {
        let style = if n.error {
            t.error()
        } else {
            t.fg(Color::Green).add_modifier(Modifier::BOLD)
        };
        pieces.push((format!(" {} ", n.msg), style));
        pieces.push(("  ".into(), Style::new()));
    } else {
        pieces.push((" ".into(), Style::new()));
    }
    for (i, (k, what)) in hints.iter().enumerate() {
        if i > 0 {
            pieces.push((" · ".into(), t.dim()));
        }
        pieces.push(((*k).to_string(), key));
        pieces.push((format!(" {what}"), t.dim()));
    }
    frame.render_widget(fit_spans(pieces, w), area);
}

/// The end of `s` that fits in `max` columns (what one is typing).
pub(super) fn tail(s: &str, max: usize) -> String {
    if text::width(s) <= max {
        return s.to_string();
    }
    let rev: String = s.chars().rev().collect();
    let cut: String = text::fit(&rev, max).chars().skip(1).collect();
    format!("…{}", cut.chars().rev().collect::<String>())
}

fn draw_detail(frame: &mut Frame, body: Rect, app: &mut App, t: Theme) {
    let Some(view) = &mut app.detail else {
        return;
    };
    let area = body;
    frame.render_widget(Clear, area);
    let id = text::clean(&view.request_id, 80);
    let title = format!(" request {id} · proxy {} ", view.pid);
    let block = Block::bordered()
        .border_style(t.fg(Color::Cyan))
        .title(Span::styled(title, t.bold()))
        .title_bottom(Line::from(" ↑↓ PgUp PgDn scroll · Esc close ").style(t.dim()));
    let inner = block.inner(area);
    let Some(content) = &view.content else {
        frame.render_widget(block, area);
        let at = centered(inner, inner.width, 1);
        frame.render_widget(Paragraph::new("loading…").centered().style(t.dim()), at);
        return;
    };
    if view.wrapped.as_ref().is_none_or(|(w, _)| *w != inner.width) {
        let mut lines = Vec::new();
        let max = usize::from(inner.width.saturating_sub(1));
        if !content.title.is_empty() {
            lines.push((true, content.title.clone()));
            lines.push((false, String::new()));
        }
        for (heading, body) in &content.sections {
            lines.push((true, heading.clone()));
            for l in body.lines() {
                let pieces = text::wrap(l, max.saturating_sub(1));
                lines.extend(pieces.into_iter().map(|s| (false, format!(" {s}"))));
            }
            lines.push((false, String::new()));
        }
        view.wrapped = Some((inner.width, lines));
    }
    let lines = view.wrapped.as_ref().map_or(&[][..], |(_, l)| &l[..]);
    let page = usize::from(inner.height);
    view.page = page.saturating_sub(1).max(1);
    view.scroll = view.scroll.min(lines.len().saturating_sub(page));
    let end = (view.scroll + page).min(lines.len());
    let position = format!(" {}-{} of {} ", view.scroll + 1, end, lines.len());
    let block = block.title_bottom(Line::from(position).right_aligned().style(t.dim()));
    frame.render_widget(block, area);
    let shown: Vec<Line> = lines
        .get(view.scroll..end)
        .unwrap_or(&[])
        .iter()
        .map(|(heading, s)| {
            let style = if *heading {
                t.fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new()
            };
            Line::styled(s.clone(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

const HELP: &[(&str, &str)] = &[
    ("Tab  Shift-Tab", "next / previous pane"),
    ("↑ ↓  k j", "move the selection"),
    ("PgUp PgDn", "a page up / down"),
    ("Home End  g G", "newest / oldest"),
    ("Enter", "open the selected request's record"),
    ("a", "approve the selected held call"),
    ("d", "deny it; type a reason or not, Enter sends"),
    ("/", "filter requests and tool calls"),
    ("Esc", "clear the filter, close a view"),
    ("Ctrl-U  Ctrl-W", "clear / delete a word while typing"),
    ("p", "pause / resume the live views"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit (approvals stay pending)"),
];

fn draw_help(frame: &mut Frame, body: Rect, t: Theme) {
    let area = centered(body, 64, HELP.len() as u16 + 4);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_style(t.fg(Color::Cyan))
        .title(Span::styled(" keys ", t.bold()))
        .title_bottom(Line::from(" times are UTC · Esc closes ").style(t.dim()));
    let key = t.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::default()];
    for (k, what) in HELP {
        lines.push(Line::from(vec![
            Span::styled(format!("  {k:<16}"), key),
            Span::raw(*what),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
