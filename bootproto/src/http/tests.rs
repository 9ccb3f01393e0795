use super::*;
use alloc::vec;

/// Feeds `input` in pieces of `step` bytes; returns the body, the head and
/// the bytes left over after the response.
fn run(input: &[u8], step: usize, max: Option<u64>) -> Result<(Vec<u8>, Head, Vec<u8>), Error> {
    let mut body = Vec::new();
    let mut r = Response::new(max);
    let mut sink = |off: u64, b: &[u8]| {
        assert_eq!(off as usize, body.len(), "offsets are contiguous");
        body.extend_from_slice(b);
        Ok(())
    };
    let mut rest = Vec::new();
    for piece in input.chunks(step.max(1)) {
        if r.is_done() {
            rest.extend_from_slice(piece);
            continue;
        }
        let (used, _) = r.feed(piece, &mut sink)?;
        rest.extend_from_slice(&piece[used..]);
    }
    if !r.is_done() {
        r.finish_at_eof()?;
    }
    r.outcome()?;
    let head = r.head().unwrap().clone();
    Ok((body, head, rest))
}

#[test]
fn url_forms() {
    let u = Url::parse("http://10.0.2.2:8080/boot/kernel.elf").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("10.0.2.2", 8080, "/boot/kernel.elf"));
    assert_eq!(u.to_string(), "http://10.0.2.2:8080/boot/kernel.elf");
    let u = Url::parse("HTTP://host").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("host", 80, "/"));
    assert_eq!(Url::parse("http://h?x=1").unwrap().path, "/?x=1");
    assert_eq!(Url::parse("http://user@h/a").unwrap().host, "h");
    assert_eq!(Url::parse("https://h/"), Err(UrlError::Scheme));
    assert_eq!(Url::parse("tftp://h/"), Err(UrlError::Scheme));
    assert_eq!(Url::parse("http:///a"), Err(UrlError::NoHost));
    assert_eq!(Url::parse("http://h:0/"), Err(UrlError::BadPort));
    assert_eq!(Url::parse("http://h:99999/"), Err(UrlError::BadPort));
    assert_eq!(Url::parse("http://h/a b"), Err(UrlError::BadCharacter));
    // A multi-byte character across byte 7 (a fuzzer find: it panicked).
    assert_eq!(Url::parse("  kingƯking"), Err(UrlError::Scheme));
    assert!(!is_http_url("httpƯ"));
}

#[test]
fn relative_references_resolve_against_the_config_url() {
    let base = Url::parse("http://10.0.0.1:8000/tftp/chainloader.cfg/01-aa").unwrap();
    let j = |r: &str| base.join(r).unwrap().to_string();
    assert_eq!(j("kernel.elf"), "http://10.0.0.1:8000/tftp/chainloader.cfg/kernel.elf");
    assert_eq!(j("../nautilus.bin"), "http://10.0.0.1:8000/tftp/nautilus.bin");
    assert_eq!(j("../../../../x"), "http://10.0.0.1:8000/x");
    assert_eq!(j("/abs/k"), "http://10.0.0.1:8000/abs/k");
    assert_eq!(j("./a/./b/../c?q=1"), "http://10.0.0.1:8000/tftp/chainloader.cfg/a/c?q=1");
    assert_eq!(j("http://other/k"), "http://other/k");
    assert_eq!(j("//other:81/k"), "http://other:81/k");
    assert_eq!(j("dir/"), "http://10.0.0.1:8000/tftp/chainloader.cfg/dir/");
}

#[test]
fn request_line_and_headers() {
    let u = Url::parse("http://10.0.2.2:8080/k?a=1").unwrap();
    let mut buf = [0u8; 256];
    let n = request(&u, "chainloader/0.1", &mut buf).unwrap();
    assert_eq!(
        core::str::from_utf8(&buf[..n]).unwrap(),
        "GET /k?a=1 HTTP/1.1\r\nHost: 10.0.2.2:8080\r\nUser-Agent: chainloader/0.1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
    );
    assert_eq!(request(&u, "x", &mut [0u8; 20]), Err(RequestTooLong));
    let u = Url::parse("http://h/").unwrap();
    let n = request(&u, "x", &mut buf).unwrap();
    assert!(core::str::from_utf8(&buf[..n]).unwrap().contains("Host: h\r\n"));
}

#[test]
fn content_length_body_in_any_split_and_keep_alive_leftover() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: x\r\n\r\nhello worldHTTP/1.1 200";
    for step in [1, 2, 3, 7, 16, 1000] {
        let (body, head, rest) = run(input, step, None).unwrap();
        assert_eq!(body, b"hello world", "step {step}");
        assert_eq!((head.status, head.content_length, head.chunked, head.close), (200, Some(11), false, false));
        assert_eq!(rest, b"HTTP/1.1 200", "step {step}");
    }
}

#[test]
fn chunked_body_with_extensions_and_trailer() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n\
        5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
    for step in [1, 2, 5, 64] {
        let (body, head, rest) = run(input, step, None).unwrap();
        assert_eq!(body, b"hello 0123456789", "step {step}");
        assert!(head.chunked);
        assert_eq!(head.content_length, None, "chunked wins over Content-Length");
        assert_eq!(rest, b"NEXT");
    }
}

#[test]
fn errors_name_the_status_and_redirects_their_target() {
    let e = run(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 100, None).unwrap_err();
    assert_eq!(e.to_string(), "HTTP 404 Not Found");
    let e = run(b"HTTP/1.1 302 Found\r\nLocation: http://h/x\r\n\r\n", 100, None).unwrap_err();
    assert_eq!(e.redirect(), Some("http://h/x"));
    assert_eq!(e.to_string(), "HTTP 302 Found (to http://h/x)");
}

#[test]
fn an_error_page_is_read_and_dropped_so_the_connection_stays_usable() {
    let input = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot foundHTTP/1.1 200 OK";
    let mut r = Response::new(Some(1));
    let mut stored = 0;
    let (used, ev) = r
        .feed(input, &mut |_, b| {
            stored += b.len();
            Ok(())
        })
        .unwrap();
    assert_eq!((&input[used..], ev, stored), (&b"HTTP/1.1 200 OK"[..], Event::Done { size: 9 }, 0));
    assert_eq!(r.outcome().unwrap_err().to_string(), "HTTP 404 Not Found");
    // A huge error body is not worth reading: fatal, reconnect.
    let e = Response::new(None)
        .feed(b"HTTP/1.1 500 Oops\r\nContent-Length: 9999999\r\n\r\n", &mut |_, _| Ok(()))
        .unwrap_err();
    assert_eq!(e.to_string(), "HTTP 500 Oops");
}

#[test]
fn early_close_is_truncation_not_success() {
    let e = run(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", 4, None).unwrap_err();
    assert_eq!(e, Error::Truncated { received: 9, expected: Some(100) });
    assert_eq!(e.to_string(), "the server closed the connection after 9 of 100 bytes");
    let e = run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", 4, None).unwrap_err();
    assert_eq!(e, Error::Truncated { received: 3, expected: None });
    let e = run(b"HTTP/1.1 200 OK\r\nContent-", 4, None).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    let mut r = Response::new(None);
    assert!(r.finish_at_eof().unwrap_err().to_string().contains("without answering"));
}

#[test]
fn http10_body_runs_to_the_close() {
    let (body, head, _) = run(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it", 3, None).unwrap();
    assert_eq!(body, b"all of it");
    assert!(head.close);
    let (_, head, _) = run(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 3, None).unwrap();
    assert!(!head.close);
    let (_, head, _) = run(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 3, None).unwrap();
    assert!(head.close);
}

#[test]
fn continue_responses_are_skipped_and_lax_line_ends_accepted() {
    let (body, head, _) =
        run(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", 1, None).unwrap();
    assert_eq!((body.as_slice(), head.status), (&b"ok"[..], 200));
}

#[test]
fn size_limit_checked_before_storing_and_while_receiving() {
    let e = run(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nxx", 100, Some(999)).unwrap_err();
    assert_eq!(e, Error::TooLarge { limit: 999, size: 1000 });
    let e =
        run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 100, Some(4)).unwrap_err();
    assert_eq!(e, Error::TooLarge { limit: 4, size: 5 });
}

#[test]
fn malformed_framing_is_refused() {
    for (input, what) in [
        (&b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..], "conflicting"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than"),
        (b"HTTP/2 200\r\n\r\n", "status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header line"),
    ] {
        let e = run(input, 7, None).unwrap_err().to_string();
        assert!(e.contains(what), "{e} (wanted {what})");
    }
}

#[test]
fn header_and_line_sizes_are_bounded() {
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    while big.len() < MAX_HEAD + 100 {
        big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let e = run(&big, 4096, None).unwrap_err().to_string();
    assert!(e.contains("longer than"), "{e}");
    let mut chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1".to_vec();
    chunk.extend(vec![b' '; MAX_HEAD + 10]);
    let e = run(&chunk, 4096, None).unwrap_err().to_string();
    assert!(e.contains("too long"), "{e}");
}

#[test]
fn body_slices_are_passed_whole() {
    // One feed of a large body costs one sink call: no per-byte path.
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n".to_vec();
    input.extend(vec![7u8; 65536]);
    let mut calls = 0;
    let mut r = Response::new(None);
    let head_len = input.len() - 65536;
    let (used, ev) = r.feed(&input[..head_len], &mut |_, _| Ok(())).unwrap();
    assert_eq!((used, ev), (head_len, Event::Pending));
    let (used, ev) = r
        .feed(&input[head_len..], &mut |_, b| {
            calls += 1;
            assert_eq!(b.len(), 65536);
            Ok(())
        })
        .unwrap();
    assert_eq!((used, ev, calls), (65536, Event::Done { size: 65536 }, 1));
}

#[test]
fn sink_errors_stop_the_transfer() {
    let mut r = Response::new(None);
    let e = r
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", &mut |_, _| Err(SinkError("full".into())))
        .unwrap_err();
    assert_eq!(e.to_string(), "cannot store the file: full");
}

#[test]
fn no_body_statuses() {
    let (body, head, rest) = run(b"HTTP/1.1 204 No Content\r\n\r\nNEXT", 3, None).unwrap();
    assert_eq!((body.len(), head.status, rest.as_slice()), (0, 204, &b"NEXT"[..]));
}
