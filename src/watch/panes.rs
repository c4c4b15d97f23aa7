//! The three panes: the approvals queue (on top, hard to miss), live
//! requests and the tool-command feed. Only the visible rows are built.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::{App, Focus, Input};
use super::cells::{feed_cells, request_cells};
use super::keys::position;
use super::text;
use super::ui::{fit_spans, tail, Theme};

/// Under this many seconds a countdown turns urgent.
const URGENT_SECS: i64 = 30;

/// Lays out the body: the queue takes what it needs (up to about half),
/// the two tables share the rest; a short terminal shows one table.
pub(super) fn draw_body(frame: &mut Frame, area: Rect, app: &mut App, t: Theme) {
    let mut rest = area;
    if !app.held.is_empty() {
        let need = queue_lines(app) as u16 + 2;
        let cap = (area.height / 2).max(4).min(area.height);
        let h = need.min(cap);
        let [queue, below] =
            Layout::vertical([Constraint::Length(h), Constraint::Fill(1)]).areas(area);
        draw_queue(frame, queue, app, t);
        rest = below;
    }
    if rest.height >= 7 {
        let [req, feed] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(rest);
        draw_requests(frame, req, app, t);
        draw_feed(frame, feed, app, t);
    } else if rest.height >= 3 {
        if app.focus == Focus::Feed {
            draw_feed(frame, rest, app, t);
        } else {
            draw_requests(frame, rest, app, t);
        }
    }
}

fn queue_lines(app: &App) -> usize {
    let typing = matches!(app.input, Some(Input::Deny { .. }));
    app.held.len() * 2 + usize::from(typing)
}

fn draw_queue(frame: &mut Frame, area: Rect, app: &App, t: Theme) {
    let now = app.now_ms;
    let left = |expires_at: i64| expires_at.saturating_mul(1000).saturating_sub(now) / 1000;
    let urgent = now > 0
        && app
            .held
            .iter()
            .any(|h| left(h.approval.expires_at) < URGENT_SECS);
    let focused = app.focus == Focus::Approvals;
    let n = app.held.len();
    let border = if urgent {
        t.fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        t.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    };
    let title_style = if urgent {
        t.pill(
            Color::White,
            Color::Red,
            Modifier::BOLD | Modifier::REVERSED,
        )
    } else {
        t.pill(
            Color::Black,
            Color::Yellow,
            Modifier::BOLD | Modifier::REVERSED,
        )
    };
    let plural = if n == 1 { "CALL WAITS" } else { "CALLS WAIT" };
    let hint = if focused {
        " a approve · d deny · ↑↓ select "
    } else {
        " a or Tab to focus "
    };
    let more_room = 14;
    let mut block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(border)
        .title(Span::styled(
            format!(" ⚠ {n} {plural} FOR YOUR APPROVAL "),
            title_style,
        ));
    if usize::from(area.width) >= text::width(hint) + more_room + 4 {
        block = block.title_bottom(Line::from(hint).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = usize::from(inner.width);
    let multi = app.proxies.len() > 1;
    let mut lines: Vec<Line> = Vec::new();
    let mut ranges = Vec::with_capacity(app.held.len());
    let mut cursor = None;
    for (i, h) in app.held.iter().enumerate() {
        let a = &h.approval;
        let selected = i == app.held_sel;
        let start = lines.len();
        let secs = left(a.expires_at);
        let (clock, clock_style) = match (h.sent, now > 0) {
            (Some(s), _) => (format!(" {s} "), t.bold()),
            (None, false) => (" --:-- ".to_string(), t.dim()),
            (None, true) if secs <= 0 => (" expiring ".to_string(), t.error()),
            (None, true) if secs < URGENT_SECS => (format!(" ⏱ {} ", text::mmss(secs)), t.error()),
            (None, true) => (format!(" ⏱ {} ", text::mmss(secs)), t.bold()),
        };
        let room = w.saturating_sub(text::width(&clock));
        let marker = if selected { "▶ " } else { "  " };
        let line_style = if selected && focused {
            t.selected()
        } else {
            Style::new()
        };
        let mut first = fit_spans(
            vec![
                (marker.to_string(), t.bold()),
                (
                    a.tool.clone(),
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                ("  ".into(), Style::new()),
                (a.summary.clone(), t.bold()),
            ],
            room,
        );
        let pad = room.saturating_sub(first.width());
        first.spans.push(Span::raw(" ".repeat(pad)));
        first.spans.push(Span::styled(clock, clock_style));
        lines.push(first.style(line_style));
        let mut second = vec![
            ("    rule ".to_string(), t.dim()),
            (a.rule.clone(), t.fg(Color::Yellow)),
        ];
        if !a.reason.is_empty() {
            second.push((format!(" — {}", a.reason), Style::new()));
        }
        if let Some(s) = &a.session {
            second.push(("  session ".into(), t.dim()));
            second.push((text::prefix(s, 8).to_string(), Style::new()));
        }
        second.push(("  id ".into(), t.dim()));
        second.push((text::clean(&a.id, 80), Style::new()));
        if multi {
            second.push(("  proxy ".into(), t.dim()));
            second.push((h.pid.to_string(), Style::new()));
        }
        lines.push(fit_spans(second, w));
        if let (true, Some(Input::Deny { pid, id })) = (selected, &app.input) {
            if *pid == h.pid && *id == a.id {
                let label = "    deny reason (optional) › ";
                let room = w.saturating_sub(text::width(label) + 1);
                let typed = tail(&app.deny_text, room);
                cursor = Some((lines.len(), text::width(label) + text::width(&typed)));
                lines.push(Line::from(vec![
                    Span::styled(label, t.fg(Color::Red).add_modifier(Modifier::BOLD)),
                    Span::styled(typed, Style::new().add_modifier(Modifier::UNDERLINED)),
                ]));
            }
        }
        ranges.push((start, lines.len()));
    }
    // Scroll by whole entries so the selected one (and its input line) is
    // in view, with as many of the more urgent ones above it as fit.
    let h = usize::from(inner.height);
    let sel = app.held_sel.min(ranges.len().saturating_sub(1));
    let sel_end = ranges.get(sel).map_or(0, |r| r.1);
    let mut first = sel;
    while first > 0 && ranges.get(first - 1).is_some_and(|r| sel_end - r.0 <= h) {
        first -= 1;
    }
    let offset = ranges.get(first).map_or(0, |r| r.0);
    let shown_entries = ranges
        .iter()
        .filter(|r| r.0 >= offset && r.1 <= offset + h)
        .count();
    if let Some((row, col)) = cursor {
        if row >= offset && row < offset + h && col < w {
            frame.set_cursor_position(Position::new(
                inner.x + col as u16,
                inner.y + (row - offset) as u16,
            ));
        }
    }
    let hidden = ranges.len() - shown_entries.min(ranges.len());
    let shown: Vec<Line> = lines.into_iter().skip(offset).take(h).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    if hidden > 0 && usize::from(area.width) > more_room + 4 {
        let more = format!(" +{hidden} more, ↑↓ ");
        let at = Rect::new(
            area.x + 2,
            area.bottom().saturating_sub(1),
            text::width(&more) as u16,
            1,
        );
        frame.render_widget(Span::styled(more, border), at);
    }
}

/// One column: its title, width (0 = the flexible one), the order in which
/// it is dropped on narrow terminals (0 = never), and alignment.
struct Col {
    title: &'static str,
    width: u16,
    drop: u8,
    right: bool,
}

const fn col(title: &'static str, width: u16, drop: u8, right: bool) -> Col {
    Col {
        title,
        width,
        drop,
        right,
    }
}

const REQUEST_COLS: [Col; 9] = [
    col("TIME UTC", 8, 0, false),
    col("SESSION", 8, 6, false),
    col("METHOD", 6, 5, false),
    col("PATH", 0, 0, false),
    col("MODEL", 14, 3, false),
    col("STATUS", 6, 0, true),
    col("LATENCY", 7, 4, true),
    col("TOKENS I/O", 11, 1, true),
    col("MASKED", 6, 2, true),
];

/// The feed's columns; the rule column grows with the terminal.
fn feed_cols(total: u16) -> [Col; 5] {
    let rule = (total.saturating_sub(34) * 2 / 5).clamp(16, 36);
    [
        col("TIME UTC", 8, 0, false),
        col("DECISION", 8, 0, false),
        col("TOOL", 10, 1, false),
        col("COMMAND / FILE", 0, 0, false),
        col("RULE / WHY", rule, 2, false),
    ]
}

/// The width of every column (0 = dropped), summing to `total`. Columns
/// are dropped until the flexible one gets at least `flex_min`.
fn widths(cols: &[Col], total: u16, flex_min: u16) -> Vec<u16> {
    let mut shown: Vec<bool> = vec![true; cols.len()];
    loop {
        let n = shown.iter().filter(|s| **s).count() as u16;
        let fixed: u16 = cols
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c.width)
            .sum::<u16>()
            + n.saturating_sub(1);
        if fixed + flex_min <= total {
            break;
        }
        let next = cols
            .iter()
            .enumerate()
            .filter(|(i, c)| shown[*i] && c.drop > 0)
            .max_by_key(|(_, c)| c.drop);
        match next {
            Some((i, _)) => shown[i] = false,
            None => break,
        }
    }
    let n = shown.iter().filter(|s| **s).count() as u16;
    let fixed: u16 = cols
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(c, _)| c.width)
        .sum::<u16>()
        + n.saturating_sub(1);
    let flex = total.saturating_sub(fixed);
    cols.iter()
        .zip(&shown)
        .map(|(c, s)| match (*s, c.width) {
            (false, _) => 0,
            (true, 0) => flex,
            (true, w) => w,
        })
        .collect()
}

/// A table pane: a title rule, a header and the rows in view.
struct Pane<'a> {
    title: String,
    cols: &'a [Col],
    /// The narrowest the flexible column may get before others go.
    flex_min: u16,
    empty: String,
    focused: bool,
}

fn render_pane(
    frame: &mut Frame,
    area: Rect,
    pane: Pane,
    rows: Rows,
    selected: Option<usize>,
    t: Theme,
) {
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(if pane.focused {
            t.fg(Color::Cyan)
        } else {
            t.dim()
        })
        .title(Span::styled(pane.title, t.pane_title(pane.focused)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let ws = widths(pane.cols, inner.width, pane.flex_min);
    let keep = |i: &usize| ws.get(*i).is_some_and(|w| *w > 0);
    let cell = |i: usize, s: &str| {
        let w = usize::from(ws.get(i).copied().unwrap_or(0));
        let right = pane.cols.get(i).is_some_and(|c| c.right);
        if right {
            text::fit_right(s, w)
        } else {
            text::fit(s, w)
        }
    };
    let header = Row::new(
        (0..pane.cols.len())
            .filter(keep)
            .map(|i| Cell::from(cell(i, pane.cols.get(i).map_or("", |c| c.title)))),
    )
    .style(t.bold().add_modifier(Modifier::UNDERLINED));
    let empty = rows.is_empty();
    let body: Vec<Row> = rows
        .into_iter()
        .enumerate()
        .map(|(n, cells)| {
            let cells = cells
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep(i))
                .map(|(i, (s, style))| Cell::from(Span::styled(cell(i, &s), style)));
            let style = if pane.focused && selected == Some(n) {
                t.selected()
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        })
        .collect();
    let constraints: Vec<Constraint> = ws
        .iter()
        .filter(|w| **w > 0)
        .map(|w| Constraint::Length(*w))
        .collect();
    frame.render_widget(
        Table::new(body, constraints)
            .header(header)
            .column_spacing(1),
        inner,
    );
    if empty && inner.height > 2 {
        let at = Rect::new(
            inner.x,
            inner.y + 1 + (inner.height - 1) / 2,
            inner.width,
            1,
        );
        frame.render_widget(Paragraph::new(pane.empty).centered().style(t.dim()), at);
    }
}

/// The window of `len` rows that keeps the selection `cur` in view.
fn window(
    view: &mut super::app::View,
    cur: usize,
    len: usize,
    rows: usize,
) -> std::ops::Range<usize> {
    view.page = rows.max(1);
    if view.sel.is_none() {
        view.offset = 0;
    }
    if cur < view.offset {
        view.offset = cur;
    }
    if cur >= view.offset + rows {
        view.offset = cur + 1 - rows.max(1);
    }
    view.offset = view.offset.min(len.saturating_sub(rows));
    view.offset..(view.offset + rows).min(len)
}

fn pane_title(name: &str, shown: usize, total: usize, app: &App) -> String {
    let mut s = format!(" {name} · ");
    if shown != total || !app.filter.is_empty() {
        s.push_str(&format!("{shown} of "));
    }
    s.push_str(&total.to_string());
    if !app.filter.is_empty() {
        s.push_str(" match");
    }
    if app.paused.is_some() {
        s.push_str(" · frozen");
    }
    s.push(' ');
    s
}

fn empty_text(app: &App, what: &str) -> String {
    if !app.filter.is_empty() {
        format!("nothing matches “{}”", app.filter)
    } else if app.proxies.is_empty() && what == "requests" {
        "no proxy attached: start one with `hoopctl connect claude-code`".into()
    } else if app.proxies.is_empty() {
        format!("no {what} yet")
    } else {
        format!("waiting for {what}…")
    }
}

/// A pane's rows: each a list of styled cells.
type Rows = Vec<Vec<(String, Style)>>;

/// One frame of a pane over `list`: moves `view` so its selection stays
/// in sight (dropping the selection when its item is no longer listed) and
/// styles the rows in the window. Returns the rows and the selected row
/// among them.
fn windowed<T>(
    list: &[(u64, T)],
    view: &mut super::app::View,
    rows_h: usize,
    cells: impl Fn(&T) -> Vec<(String, Style)>,
) -> (Rows, Option<usize>) {
    let cur = position(list, view.sel);
    let found = view.sel.is_none() || list.get(cur).map(|(s, _)| Some(*s)) == Some(view.sel);
    let range = window(view, cur, list.len(), rows_h);
    let rows = list
        .get(range.clone())
        .unwrap_or(&[])
        .iter()
        .map(|(_, item)| cells(item))
        .collect();
    if !found {
        view.sel = None;
    }
    (rows, cur.checked_sub(range.start))
}

fn draw_requests(frame: &mut Frame, area: Rect, app: &mut App, t: Theme) {
    let rows_h = usize::from(area.height.saturating_sub(2));
    let mut view = app.views[0];
    let (rows, selected, pane) = {
        let list = app.visible_requests();
        let (rows, selected) = windowed(&list, &mut view, rows_h, |r| {
            let [time, session, method, path, model, status, latency, tokens, masked] =
                request_cells(r);
            let masked_style = t.fg(Color::Magenta).add_modifier(Modifier::BOLD);
            let status = if status.is_empty() {
                "…".to_string()
            } else {
                status
            };
            vec![
                (time, t.dim()),
                (session, t.fg(Color::Blue)),
                (method, Style::new()),
                (path, Style::new()),
                (model, t.fg(Color::Cyan)),
                (status, t.status(r.status)),
                (latency, Style::new()),
                (tokens, Style::new()),
                (masked, masked_style),
            ]
        });
        let pane = Pane {
            title: pane_title("Requests", list.len(), app.requests.len(), app),
            cols: &REQUEST_COLS,
            flex_min: 30,
            empty: empty_text(app, "requests"),
            focused: app.focus == Focus::Requests,
        };
        (rows, selected, pane)
    };
    app.views[0] = view;
    render_pane(frame, area, pane, rows, selected, t);
}

fn draw_feed(frame: &mut Frame, area: Rect, app: &mut App, t: Theme) {
    let rows_h = usize::from(area.height.saturating_sub(2));
    let cols = feed_cols(area.width);
    let mut view = app.views[1];
    let (rows, selected, pane) = {
        let list = app.visible_feed();
        let (rows, selected) = windowed(&list, &mut view, rows_h, |f| {
            let [time, badge, tool, summary, why] = feed_cells(f);
            vec![
                (time, t.dim()),
                (badge, t.badge(f.badge)),
                (tool, t.fg(Color::Yellow)),
                (summary, Style::new()),
                (why, t.dim()),
            ]
        });
        let pane = Pane {
            title: pane_title("Tool calls", list.len(), app.feed.len(), app),
            cols: &cols,
            flex_min: 24,
            empty: empty_text(app, "tool calls"),
            focused: app.focus == Focus::Feed,
        };
        (rows, selected, pane)
    };
    app.views[1] = view;
    render_pane(frame, area, pane, rows, selected, t);
}
