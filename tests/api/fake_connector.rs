//! A real HTTP connector on port 0 whose behaviour a test can change while it runs.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the connector answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// As the contract says.
    Normal,
    /// 500 on everything.
    Fail,
    /// Never answers.
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Answers normally after this many milliseconds.
    Delay(u64),
}

/// One execute request as the connector saw it: tool name, body, headers.
pub type Execution = (String, Value, Vec<(String, String)>);

pub struct State {
    tools: Mutex<Vec<Value>>,
    behaviour: Mutex<Behaviour>,
    /// Requests to `/tools/{name}/execute`.
    pub executions: AtomicUsize,
    /// Requests to `/resources/{uri}`.
    pub reads: AtomicUsize,
    /// Requests to `/info`.
    pub probes: AtomicUsize,
    /// The next this many execute, read and prompt requests answer garbage.
    pub garbage_next: AtomicUsize,
    /// The last execute request: tool name, body, headers.
    pub last_execute: Mutex<Option<Execution>>,
    /// The words `summarize` renders before its topic.
    prompt_lead: Mutex<String>,
}

pub struct FakeConnector {
    pub url: String,
    pub state: Arc<State>,
    handle: ServerHandle,
    port: u16,
    /// After a stop, a socket bound to the port and not listening: connections are refused, and
    /// another test's server cannot be given the port and answer in this one's place.
    reserved: Mutex<Option<socket2::Socket>>,
}

impl FakeConnector {
    /// Starts a connector with tools `echo` and `fail`, two resources and a prompt.
    pub async fn start() -> FakeConnector {
        Self::with_tools(vec![
            json!({"name": "echo", "description": "Echoes `text`.",
                   "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                                   "required": ["text"], "$defs": {"x": {"type": "string"}}}}),
            json!({"name": "fail", "description": "Always fails."}),
        ])
        .await
    }

    pub async fn with_tools(tools: Vec<Value>) -> FakeConnector {
        let state = Arc::new(State {
            tools: Mutex::new(tools),
            behaviour: Mutex::new(Behaviour::Normal),
            executions: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            garbage_next: AtomicUsize::new(0),
            last_execute: Mutex::new(None),
            prompt_lead: Mutex::new("Summarize".into()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let handle = serve(state.clone(), listener);
        FakeConnector {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
            port,
            reserved: Mutex::new(None),
        }
    }

    /// Starts the server again on the same port after [`FakeConnector::stop`].
    pub async fn restart(&mut self) {
        self.reserved.lock().unwrap().take();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_reuse_address(true).expect("reuse");
        let address: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        socket.bind(&address.into()).expect("rebind the same port");
        socket.listen(128).expect("listen");
        self.handle = serve(self.state.clone(), socket.into());
    }
}

fn serve(state: Arc<State>, listener: TcpListener) -> ServerHandle {
    {
        let shared = web::Data::from(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/info", web::get().to(info))
                .route("/tools", web::get().to(tools_list))
                .route("/tools/{name}/execute", web::post().to(execute))
                .route("/resources", web::get().to(resources))
                .route("/resources/{uri}", web::get().to(resource))
                .route("/prompts", web::get().to(prompts))
                .route("/prompts/{name}", web::get().to(prompt))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        handle
    }
}

impl FakeConnector {
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Makes `summarize` render `lead` before its topic (`Summarize` at first).
    pub fn set_prompt_lead(&self, lead: &str) {
        *self.state.prompt_lead.lock().unwrap() = lead.to_string();
    }

    pub fn set_tools(&self, tools: Vec<Value>) {
        *self.state.tools.lock().unwrap() = tools;
    }

    pub fn executions(&self) -> usize {
        self.state.executions.load(Ordering::SeqCst)
    }

    pub fn reads(&self) -> usize {
        self.state.reads.load(Ordering::SeqCst)
    }

    /// Makes the next `n` execute, read and prompt requests answer garbage.
    pub fn garbage_next(&self, n: usize) {
        self.state.garbage_next.store(n, Ordering::SeqCst);
    }

    /// Stops the server: its port refuses connections afterwards, and stays this connector's.
    /// The stop is a graceful one with no grace (`shutdown_timeout(0)`), because only a graceful
    /// stop waits for the worker to end; a forced one returns at once, and a keep-alive
    /// connection the gateway holds could still be answered by the worker for a moment.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_reuse_address(true).expect("reuse");
        let address: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        if socket.bind(&address.into()).is_ok() {
            *self.reserved.lock().unwrap() = Some(socket);
        }
    }
}

/// Answers per the behaviour, or `None` to answer normally.
async fn misbehave(state: &State) -> Option<HttpResponse> {
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Normal => None,
        Behaviour::Fail => Some(HttpResponse::InternalServerError().json(json!({"error": "down"}))),
        Behaviour::Hang => {
            actix_rt::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        Behaviour::Garbage => Some(HttpResponse::Ok().body("<html>not json")),
        Behaviour::Delay(ms) => {
            actix_rt::time::sleep(Duration::from_millis(ms)).await;
            None
        }
    }
}

/// Garbage if `garbage_next` says so, else per the behaviour.
async fn misbehave_once(state: &State) -> Option<HttpResponse> {
    let take = state
        .garbage_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if take.is_ok() {
        return Some(HttpResponse::Ok().body("<html>not json"));
    }
    misbehave(state).await
}

async fn info(state: web::Data<State>) -> HttpResponse {
    state.probes.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&state).await {
        return response;
    }
    HttpResponse::Ok().json(json!({"name": "fake", "version": "1.0.0"}))
}

async fn tools_list(state: web::Data<State>) -> HttpResponse {
    if let Some(response) = misbehave(&state).await {
        return response;
    }
    let tools = state.tools.lock().unwrap().clone();
    HttpResponse::Ok().json(json!({ "tools": tools }))
}

async fn execute(
    state: web::Data<State>,
    name: web::Path<String>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    state.executions.fetch_add(1, Ordering::SeqCst);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    *state.last_execute.lock().unwrap() = Some((name.clone(), body.0.clone(), headers));
    if let Some(response) = misbehave_once(&state).await {
        return response;
    }
    match name.as_str() {
        "fail" => HttpResponse::InternalServerError().json(json!({"error": "the tool broke"})),
        "strict" if body.0["arguments"].get("repo").is_none() => {
            HttpResponse::BadRequest().json(json!({"error": "missing repo"}))
        }
        _ => {
            let text = body.0["arguments"]["text"]
                .as_str()
                .unwrap_or("")
                .to_string();
            HttpResponse::Ok().json(json!({"content": [{"type": "text", "text": text}]}))
        }
    }
}

async fn resources(state: web::Data<State>) -> HttpResponse {
    if let Some(response) = misbehave(&state).await {
        return response;
    }
    HttpResponse::Ok().json(json!({"resources": [
        {"uri": "file://README.md", "name": "README", "mimeType": "text/markdown"},
        {"uri": "memo://a b", "name": "memo"},
    ]}))
}

async fn resource(state: web::Data<State>, uri: web::Path<String>) -> HttpResponse {
    state.reads.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave_once(&state).await {
        return response;
    }
    match uri.as_str() {
        "file://README.md" | "memo://a b" => HttpResponse::Ok().json(json!({"contents": [
            {"uri": uri.as_str(), "mimeType": "text/plain", "text": format!("content of {uri}")}
        ]})),
        _ => HttpResponse::NotFound().json(json!({"error": "no such resource"})),
    }
}

async fn prompts(state: web::Data<State>) -> HttpResponse {
    if let Some(response) = misbehave(&state).await {
        return response;
    }
    HttpResponse::Ok().json(
        json!({"prompts": [{"name": "summarize", "description": "Summarize",
        "arguments": [{"name": "topic", "required": true}]}]}),
    )
}

async fn prompt(
    state: web::Data<State>,
    name: web::Path<String>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    if let Some(response) = misbehave_once(&state).await {
        return response;
    }
    if name.as_str() != "summarize" {
        return HttpResponse::NotFound().json(json!({"error": "no such prompt"}));
    }
    let Some(topic) = query.get("topic") else {
        return HttpResponse::BadRequest().json(json!({"error": "topic is required"}));
    };
    let lead = state.prompt_lead.lock().unwrap().clone();
    HttpResponse::Ok().json(json!({"messages": [{"role": "user",
        "content": {"type": "text", "text": format!("{lead} {topic}.")}}]}))
}
