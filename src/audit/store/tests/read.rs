//! The read side: open, list, resolve, show, search, export, JSON shape.

use super::*;

fn event_at(s: &SessionRef, kind: Kind, at_ms: i64, text: &str) -> Event {
    let mut ev = Event::new(s.clone(), kind, json!({"text": text}));
    ev.at_ms = at_ms;
    ev.text = Some(text.to_string());
    ev
}

#[test]
fn a_missing_store_says_so() {
    let (_dir, path) = store();
    let err = Reader::open(&path).err().unwrap();
    assert!(matches!(err, Error::Missing { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("no recorded sessions yet at "), "{msg}");
    assert!(msg.contains(FILE_NAME), "{msg}");
    assert!(!path.exists(), "opening for reading creates nothing");
}

#[test]
fn the_reader_cannot_write() {
    let (_dir, path) = store();
    filled(&path, 1);
    let reader = Reader::open(&path).unwrap();
    assert!(reader.conn.execute("DELETE FROM events", []).is_err());
}

#[test]
fn search_finds_commands_and_survives_fts_syntax() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-s"), Some("agent-s"));
    let texts = [
        "psql -c 'DROP TABLE users;' production",
        "rm -rf /home/ana/project --no-preserve-root",
        "please summarise the README",
        "git push --force origin main",
    ];
    for (i, t) in texts.iter().enumerate() {
        writer
            .append(event_at(&s, Kind::ToolCall, 1_000 + i as i64, t))
            .unwrap();
    }
    // An event with nothing to index.
    writer
        .append(Event::new(s.clone(), Kind::Egress, json!({"host": "x"})))
        .unwrap();
    writer.close();
    let reader = Reader::open(&path).unwrap();

    let hits = reader.search("DROP TABLE", false, 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].event.text.as_deref(), Some(texts[0]));
    assert!(
        hits[0].snippet.contains("DROP TABLE"),
        "{:?}",
        hits[0].snippet
    );
    assert_eq!(reader.search("drop table", false, 10).unwrap().len(), 1);
    let hits = reader.search("rm -rf", false, 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0].snippet.contains("rm -rf /home"),
        "{:?}",
        hits[0].snippet
    );
    // AND semantics.
    assert!(reader.search("rm README", false, 10).unwrap().is_empty());
    // FTS syntax is taken literally.
    for q in [
        "\"", "*", "-", ":", "a\"b", "push*", "text:rm", "NOT rm", "(", "AND", "OR rm", "NEAR(",
        "^rm", "   ", "",
    ] {
        assert!(reader.search(q, false, 10).is_ok(), "{q:?}");
    }
    // Raw FTS5 syntax.
    let raw = reader.search("summar* OR force", true, 10).unwrap();
    assert_eq!(raw.len(), 2);
    // Newest first.
    assert!(raw[0].event.id > raw[1].event.id);
    assert!(raw[0].snippet.contains("force"), "{:?}", raw[0].snippet);
    let err = reader.search("\"unterminated", true, 10).unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err:?}");
    assert!(err.to_string().contains("unterminated"), "{err}");
    // The limit applies.
    assert_eq!(
        reader.search("OR", true, 10).map(|h| h.len()).unwrap_or(0),
        0
    );
    let all = reader
        .search("rm OR DROP OR README OR push", true, 2)
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[test]
fn snippets_are_cut_around_the_match() {
    let long = format!(
        "{} needle in the\n\nhaystack {}",
        "a ".repeat(200),
        "b ".repeat(200)
    );
    let s = super::super::read::snippet(&long, &["NEEDLE".to_string()]);
    assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
    assert!(s.contains("needle in the haystack"), "{s}");
    assert!(s.chars().count() < 200, "{s}");
    assert_eq!(
        super::super::read::snippet("short text", &["zzz".to_string()]),
        "short text"
    );
    // Multi-byte text is cut on character boundaries.
    let wide = "é".repeat(300) + "Ünïcödé" + &"ß".repeat(300);
    let s = super::super::read::snippet(&wide, &["ünïcödé".to_string()]);
    assert!(s.contains("Ünïcödé"), "{s}");
    assert_eq!(
        super::super::read::quote_terms(r#"DROP "x" -  *"#),
        r#""DROP" """x""""#
    );
}

#[test]
fn sessions_list_newest_first_with_since_and_limit() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let r = run("run-l");
    for (i, agent) in ["one", "two", "three"].iter().enumerate() {
        let s = session(&r, Some(agent));
        writer
            .append(event_at(&s, Kind::Request, 10_000 * (i as i64 + 1), "x"))
            .unwrap();
    }
    writer.close();
    let reader = Reader::open(&path).unwrap();
    let list = reader.sessions(None, 10).unwrap();
    let agents: Vec<_> = list
        .iter()
        .map(|s| s.agent_session.clone().unwrap())
        .collect();
    assert_eq!(agents, vec!["three", "two", "one"]);
    assert_eq!(reader.sessions(Some(20_000), 10).unwrap().len(), 2);
    assert_eq!(reader.sessions(None, 1).unwrap().len(), 1);
    let json = serde_json::to_value(&list[0]).unwrap();
    assert_eq!(json["agent_session"], "three");
    assert_eq!(json["events"], 1);
}

#[test]
fn resolve_takes_ids_prefixes_and_agent_sessions() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let r = run("run-r");
    let a = session(&r, Some("6f1c0b2e-aaaa-4bbb-8ccc-000000000001"));
    let b = session(&r, Some("6f1c0b2e-aaaa-4bbb-8ccc-000000000002"));
    let none = session(&r, None);
    for s in [&a, &b, &none] {
        writer.append(request(s, 1)).unwrap();
    }
    writer.close();
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.resolve(&a.id()).unwrap().id, a.id());
    assert_eq!(reader.resolve(&a.id()[..6]).unwrap().id, a.id());
    assert_eq!(
        reader
            .resolve("6f1c0b2e-aaaa-4bbb-8ccc-000000000002")
            .unwrap()
            .id,
        b.id()
    );
    assert_eq!(reader.resolve(&none.id()).unwrap().agent_session, None);
    let err = reader.resolve("6f1c0b2e").unwrap_err();
    match &err {
        Error::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&a.id()), "{err}");
    // Too short to be a prefix, and the error says so.
    let err = reader.resolve(&a.id()[..3]).unwrap_err();
    assert!(matches!(err, Error::ShortPrefix(_)), "{err:?}");
    assert!(err.to_string().contains("at least 4 characters"), "{err}");
    assert!(matches!(
        reader.resolve("zzzzzz"),
        Err(Error::NoSuchSession(_))
    ));
    assert!(matches!(reader.resolve(" "), Err(Error::NoSuchSession(_))));
}

#[test]
fn export_streams_in_id_order_with_filters() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let r = run("run-e");
    let a = session(&r, Some("agent-a"));
    let b = session(&r, Some("agent-b"));
    for i in 0..10i64 {
        let s = if i % 2 == 0 { &a } else { &b };
        writer
            .append(event_at(s, Kind::Response, 1_000 * i, &format!("e{i}")))
            .unwrap();
    }
    writer.close();
    let reader = Reader::open(&path).unwrap();
    let collect_after = |since_ms: Option<i64>, session: Option<&str>, after_id: Option<i64>| {
        let mut out = Vec::new();
        let filter = ExportFilter {
            since_ms,
            session,
            after_id,
        };
        let n = reader
            .export(&filter, &mut |ev| {
                out.push(ev);
                Ok(())
            })
            .unwrap();
        assert_eq!(n as usize, out.len());
        out
    };
    let collect = |since: Option<i64>, session: Option<&str>| collect_after(since, session, None);
    let all = collect(None, None);
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(collect(Some(5_000), None).len(), 5);
    let only_a = collect(None, Some(&a.id()));
    assert_eq!(only_a.len(), 5);
    assert!(only_a.iter().all(|e| e.session_id == a.id()));
    assert_eq!(collect(Some(5_000), Some("agent-b")).len(), 3);
    // Incremental: after the 7th event's id, the last 3; combined with a session.
    let after = collect_after(None, None, Some(all[6].id));
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        [all[7].id, all[8].id, all[9].id]
    );
    assert_eq!(collect_after(None, Some(&a.id()), Some(all[6].id)).len(), 1);
    assert!(collect_after(None, None, Some(all[9].id)).is_empty());
    // The sink's error stops the export.
    let err = reader
        .export(&ExportFilter::default(), &mut |_| {
            Err(Error::Output(std::io::Error::other("broken pipe")))
        })
        .unwrap_err();
    assert!(err.to_string().contains("broken pipe"));
    assert!(matches!(
        reader.export(
            &ExportFilter {
                session: Some("nope-nope"),
                ..ExportFilter::default()
            },
            &mut |_| Ok(())
        ),
        Err(Error::NoSuchSession(_))
    ));
}

#[test]
fn stored_events_export_as_siem_json() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-j"), Some("agent-j"));
    let mut json_body = request(&s, 1);
    json_body.at_ms = 1_767_225_600_123; // 2026-01-01T00:00:00.123Z
    writer.append(json_body).unwrap();
    let mut text_body = Event::new(s.clone(), Kind::Response, json!({"status": 200}));
    text_body.body = Some(b"plain \xff text".to_vec().into());
    writer.append(text_body).unwrap();
    writer
        .append(Event::new(s.clone(), Kind::Egress, json!({"host": "h"})))
        .unwrap();
    writer.close();
    let reader = Reader::open(&path).unwrap();
    let events = reader.events(&s.id()).unwrap();
    let first = events[0].to_json();
    assert_eq!(first["at"], "2026-01-01T00:00:00.123Z");
    assert_eq!(first["session"], s.id());
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "request");
    assert_eq!(first["request_id"], "req-1");
    assert_eq!(first["data"]["n"], 1);
    assert_eq!(first["body"]["messages"][0]["content"], "hello 1");
    assert_eq!(first["text"], "prompt number 1");
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
    assert_eq!(first["prev_hash"], "0".repeat(64));
    assert_eq!(events[1].to_json()["body"], "plain \u{fffd} text");
    assert_eq!(events[1].to_json()["prev_hash"], first["hash"]);
    assert_eq!(events[2].to_json()["body"], serde_json::Value::Null);
    assert_eq!(events[2].to_json()["request_id"], serde_json::Value::Null);
    // Serialize is the same shape.
    assert_eq!(serde_json::to_value(&events[0]).unwrap(), first);
    assert_eq!(
        reader.event(events[1].id).unwrap().as_ref(),
        Some(&events[1])
    );
}

#[test]
fn a_damaged_body_is_reported_by_show() {
    let (_dir, path) = store();
    let id = filled(&path, 2);
    second_connection(&path)
        .execute("UPDATE events SET body = x'0102' WHERE seq = 2", [])
        .unwrap();
    let err = Reader::open(&path).unwrap().events(&id).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("sessions verify"), "{err}");
}
