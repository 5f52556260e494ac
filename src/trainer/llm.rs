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
    /// Asks for one completion of `prompt`; the error names the problem, never the key.
    pub async fn complete(&self, prompt: &str) -> Result<String, String> {
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut request = awc::Client::builder()
            .timeout(self.timeout)
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
