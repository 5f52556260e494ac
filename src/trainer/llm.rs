//! The optimizer LLM: any OpenAI-compatible chat-completions endpoint, called with awc within a
//! timeout and a budget of calls per training run. Without `trainer.llm.base_url` the trainer
//! runs the approaches that need no LLM and says the meta-prompt is disabled.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// How to reach the LLM.
#[derive(Clone)]
pub struct Llm {
    /// `…/v1`, to which `/chat/completions` is appended.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The API key, if the endpoint needs one.
    pub api_key: Option<SecretString>,
    /// Deadline of one call.
    pub timeout: Duration,
}

impl Llm {
    /// Asks for one completion of `prompt`, the whole exchange within the timeout (awc's own
    /// covers the answer's head only, so a trickled body would hold the run); the error names
    /// the problem, never the key. An answer that quotes the key is refused, so that it can
    /// never become a version that clients are served.
    pub async fn complete(&self, prompt: &str) -> Result<String, String> {
        let timeout = self.timeout;
        let answer = actix_rt::time::timeout(timeout, self.exchange(prompt))
            .await
            .map_err(|_| format!("the LLM did not answer within {} ms", timeout.as_millis()))??;
        let quotes_key = self.api_key.as_ref().is_some_and(|key| {
            let key = key.expose_secret();
            !key.is_empty() && answer.contains(key)
        });
        if quotes_key {
            return Err("the LLM's answer quotes the API key it was sent; refused".into());
        }
        Ok(answer)
    }

    async fn exchange(&self, prompt: &str) -> Result<String, String> {
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut request = awc::Client::builder()
            .timeout(self.timeout)
            .disable_redirects()
            .finish()
            .post(url)
            .insert_header(("content-type", "application/json"));
        if let Some(key) = &self.api_key {
            request =
                request.insert_header(("authorization", format!("Bearer {}", key.expose_secret())));
        }
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "user", "content": prompt}],
        });
        let mut response = request
            .send_body(body.to_string())
            .await
            .map_err(|e| format!("the LLM is unreachable: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the LLM answered HTTP {}", response.status()));
        }
        let answer: Value = response
            .json()
            .limit(1024 * 1024)
            .await
            .map_err(|e| format!("the LLM answered something that is not JSON: {e}"))?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| "the LLM answer has no message content".to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// An endpoint that answers one request with the bytes of `head` and `body`, then holds the
    /// connection open; its base URL.
    fn endpoint(head: String, body: String) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            std::thread::sleep(Duration::from_secs(10));
        });
        url
    }

    fn llm(base_url: String) -> Llm {
        Llm {
            base_url,
            model: "m".into(),
            api_key: Some(SecretString::from("sk-test-key-123")),
            timeout: Duration::from_millis(300),
        }
    }

    #[actix_rt::test]
    async fn a_body_that_trickles_past_the_timeout_fails_the_call() {
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
        let url = endpoint(head.into(), "{\"choices\"".into());

        let err = llm(url).complete("p").await.unwrap_err();

        assert_eq!(err, "the LLM did not answer within 300 ms");
    }

    #[actix_rt::test]
    async fn an_answer_quoting_the_api_key_is_refused() {
        let body = json!({"choices": [{"message": {"content": "Searches with key Bearer sk-test-key-123"}}]})
            .to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let url = endpoint(head, body);

        let err = llm(url).complete("p").await.unwrap_err();

        assert!(err.contains("quotes the API key"), "{err}");
        assert!(!err.contains("sk-test-key-123"));
    }
}
