//! An incremental parser of Server-Sent Events, for reading MCP servers' event streams.

/// One event: its name (`message` unless given) and its data lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub name: String,
    /// The `data:` fields.
    pub data: String,
}

/// Accumulates bytes and yields complete events.
#[derive(Default)]
pub struct Parser {
    buffer: String,
}

impl Parser {
    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        if self.buffer.contains('\r') {
            self.buffer = self.buffer.replace("\r\n", "\n").replace('\r', "\n");
        }
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => name = value.to_string(),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if !data.is_empty() {
                events.push(Event {
                    name,
                    data: data.join("\n"),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut parser = Parser::default();
        assert!(parser.push(b"event: endpoint\nda").is_empty());
        let events = parser.push(b"ta: /messages?x=1\n\n: comment\n\ndata: {\"a\":1}\n\n");
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
        let mut parser = Parser::default();
        let events = parser.push(b"data: a\r\ndata: b\r\n\r\n");
        assert_eq!(events[0].data, "a\nb");
    }
}
