//! An incremental parser of Server-Sent Events, for reading MCP servers' event streams.

/// One event: its name (`message` unless given) and its data lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub name: String,
    /// The `data:` fields.
    pub data: String,
}

/// An event that grew past the parser's limit before it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge(pub usize);

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an event longer than {} bytes", self.0)
    }
}

/// Accumulates bytes and yields complete events. It works on bytes, so that a character split
/// across chunks is read whole; turns `\r\n` and `\r` into `\n` as bytes arrive, remembering a
/// `\r` that ends a chunk; searches each byte for the end of an event about once, however the
/// stream is cut; and refuses an event longer than its limit.
pub struct Parser {
    /// Bytes of events not yet complete, line ends already `\n`.
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no blank line.
    searched: usize,
    /// Whether the last byte seen was a `\r` (already written as `\n`).
    after_cr: bool,
    /// The longest event accepted, in bytes.
    max: usize,
    /// The newest `id:` field: where a resumed stream starts again (`Last-Event-ID`).
    last_id: Option<String>,
    /// The newest `retry:` field: how long to wait before resuming, in milliseconds.
    retry_ms: Option<u64>,
    /// Bytes looked at while searching for ends of events.
    #[cfg(test)]
    examined: usize,
}

impl Parser {
    /// A parser that refuses events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            buffer: Vec::new(),
            searched: 0,
            after_cr: false,
            max: max_event_bytes,
            last_id: None,
            retry_ms: None,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Adds a chunk; returns the events it completed, or an error once the event under way is
    /// longer than the limit (the stream cannot be read on after that).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        if !self.after_cr && !chunk.contains(&b'\r') {
            self.buffer.extend_from_slice(chunk);
        } else {
            self.push_converting(chunk);
        }
        let mut events = Vec::new();
        let mut start = 0;
        // A blank line that ends an event may begin on the last byte already searched.
        let mut from = self.searched.saturating_sub(1);
        while let Some(at) = find_blank_line(&self.buffer[from..]) {
            self.count_examined(at + 2);
            let end = from + at;
            let block = parse_block(&self.buffer[start..end]);
            self.last_id = block.id.or(self.last_id.take());
            self.retry_ms = block.retry_ms.or(self.retry_ms);
            events.extend(block.event);
            start = end + 2;
            from = start;
        }
        self.count_examined(self.buffer.len() - from);
        self.buffer.drain(..start);
        self.searched = self.buffer.len();
        if self.buffer.len() > self.max {
            return Err(EventTooLarge(self.max));
        }
        Ok(events)
    }

    /// Forgets an event cut short by the end of its stream; keeps the newest id and retry,
    /// for reading the stream's continuation.
    pub fn restart(&mut self) {
        self.buffer.clear();
        self.searched = 0;
        self.after_cr = false;
    }

    /// The id of the newest event that named one.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The wait before reconnecting that the server asked for, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Appends `chunk` with its `\r\n` and `\r` line ends turned into `\n`.
    fn push_converting(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' => {
                    self.buffer.push(b'\n');
                    self.after_cr = true;
                }
                _ => {
                    self.buffer.push(byte);
                    self.after_cr = false;
                }
            }
        }
    }

    #[cfg(test)]
    fn count_examined(&mut self, bytes: usize) {
        self.examined += bytes;
    }

    #[cfg(not(test))]
    fn count_examined(&mut self, _bytes: usize) {}
}

/// Where the first `\n\n` in `bytes` begins.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\n\n")
}

/// What one block of lines says.
struct Block {
    /// Its event, if it has data.
    event: Option<Event>,
    /// Its `id:` field (an id with a NUL is ignored, as the SSE standard says).
    id: Option<String>,
    /// Its `retry:` field, when it is a number.
    retry_ms: Option<u64>,
}

fn parse_block(block: &[u8]) -> Block {
    let block = String::from_utf8_lossy(block);
    let mut name = String::from("message");
    let mut data: Vec<&str> = Vec::new();
    let (mut id, mut retry_ms) = (None, None);
    for line in block.split('\n') {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value.to_string(),
            "data" => data.push(value),
            "id" if !value.contains('\0') => id = Some(value.to_string()),
            "retry" => retry_ms = value.parse().ok().or(retry_ms),
            _ => {}
        }
    }
    let event = (!data.is_empty()).then(|| Event {
        name,
        data: data.join("\n"),
    });
    Block {
        event,
        id,
        retry_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::new(usize::MAX)
    }

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut parser = parser();
        assert!(parser.push(b"event: endpoint\nda").unwrap().is_empty());
        let events = parser
            .push(b"ta: /messages?x=1\n\n: comment\n\ndata: {\"a\":1}\n\n")
            .unwrap();
        assert_eq!(
            events,
            [
                Event {
                    name: "endpoint".into(),
                    data: "/messages?x=1".into()
                },
                Event {
                    name: "message".into(),
                    data: "{\"a\":1}".into()
                },
            ]
        );
    }

    #[test]
    fn crlf_line_ends_and_multi_line_data_are_understood() {
        let events = parser().push(b"data: a\r\ndata: b\r\n\r\n").unwrap();
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn a_character_or_a_line_end_split_across_chunks_is_read_whole() {
        let text = "data: é中\r\ndata: b\r\n\r\n".as_bytes();
        // Every place a chunk can end, inside a character and between `\r` and `\n` among them.
        for cut in 1..text.len() {
            let mut parser = parser();
            let mut events = parser.push(&text[..cut]).unwrap();
            events.extend(parser.push(&text[cut..]).unwrap());
            let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["é中\nb"], "cut at {cut}");
        }
    }

    #[test]
    fn a_large_event_in_small_chunks_is_searched_once() {
        // 8 MiB of data in 8 KiB chunks: searching the whole buffer again at every chunk
        // would look at about 4 GiB.
        let line = format!("data: {}\n", "x".repeat(1023));
        let mut stream = line.repeat(8 * 1024).into_bytes();
        stream.push(b'\n');
        let mut parser = parser();
        let mut events = Vec::new();
        for chunk in stream.chunks(8 * 1024) {
            events.extend(parser.push(chunk).unwrap());
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 8 * 1024 * (1023 + 1) - 1);
        assert!(parser.examined < 2 * stream.len(), "{}", parser.examined);
    }

    #[test]
    fn the_newest_id_and_retry_are_kept_for_resuming() {
        let mut parser = parser();
        assert_eq!(parser.last_id(), None);
        let events = parser.push(b"id: 7\nretry: 250\ndata: \n\n").unwrap();
        assert_eq!(events[0].data, "", "a priming event has empty data");
        parser
            .push(b"id: 8\ndata: {}\n\n: no id\ndata: {}\n\n")
            .unwrap();
        assert_eq!(
            (parser.last_id(), parser.retry_ms()),
            (Some("8"), Some(250))
        );
        parser.push(b"id: a\0b\nretry: soon\ndata: x\n\n").unwrap();
        assert_eq!(
            (parser.last_id(), parser.retry_ms()),
            (Some("8"), Some(250))
        );
        // A stream that ends inside an event; its continuation starts afresh.
        parser.push(b"id: 9\ndata: {\"cut").unwrap();
        parser.restart();
        let events = parser.push(b"id: 9\ndata: {}\n\n").unwrap();
        assert_eq!(
            (events[0].data.as_str(), parser.last_id()),
            ("{}", Some("9"))
        );
    }

    #[test]
    fn an_event_longer_than_the_limit_is_refused() {
        let mut parser = Parser::new(16);
        assert_eq!(parser.push(b"data: 0123456789\n\n").unwrap().len(), 1);
        assert!(parser.push(b"data: 0123456").unwrap().is_empty());
        assert_eq!(parser.push(b"7890"), Err(EventTooLarge(16)));
    }
}
