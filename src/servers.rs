//! Virtual servers: named views of the catalog served at `/servers/{name}/mcp` and
//! `/servers/{name}/sse`. Owns the set of them, from the settings (`servers:`) and from the ops
//! API; what a view shows is [`crate::mcp::scope`]'s business.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::mcp::scope::VirtualServer;
use crate::registry::{RegistryError, Source};

/// The virtual servers by name.
#[derive(Default)]
pub struct VirtualServers {
    inner: RwLock<BTreeMap<String, (Arc<VirtualServer>, Source)>>,
}

impl VirtualServers {
    /// The servers of the settings.
    pub fn new(from_file: &[VirtualServer]) -> Self {
        let servers = from_file
            .iter()
            .map(|s| (s.name.clone(), (Arc::new(s.clone()), Source::File)))
            .collect();
        VirtualServers {
            inner: RwLock::new(servers),
        }
    }

    /// The server named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<VirtualServer>> {
        self.inner.read().ok()?.get(name).map(|(s, _)| s.clone())
    }

    /// Every server with where it comes from, in name order.
    pub fn list(&self) -> Vec<(Arc<VirtualServer>, Source)> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a server registered through the API.
    pub fn add(&self, server: VirtualServer) -> Result<(), RegistryError> {
        let mut map = self.inner.write().map_err(|_| poisoned())?;
        if map.contains_key(&server.name) {
            return Err(RegistryError::Exists(server.name));
        }
        map.insert(server.name.clone(), (Arc::new(server), Source::Api));
        Ok(())
    }

    /// Replaces a server registered through the API.
    pub fn replace(&self, server: VirtualServer) -> Result<(), RegistryError> {
        let mut map = self.inner.write().map_err(|_| poisoned())?;
        match map.get(&server.name) {
            None => return Err(RegistryError::NotFound(server.name)),
            Some((_, Source::File)) => return Err(RegistryError::FromFile(server.name)),
            Some(_) => {}
        }
        map.insert(server.name.clone(), (Arc::new(server), Source::Api));
        Ok(())
    }

    /// Removes a server registered through the API.
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let mut map = self.inner.write().map_err(|_| poisoned())?;
        match map.get(name) {
            None => Err(RegistryError::NotFound(name.to_string())),
            Some((_, Source::File)) => Err(RegistryError::FromFile(name.to_string())),
            Some(_) => {
                map.remove(name);
                Ok(())
            }
        }
    }
}

fn poisoned() -> RegistryError {
    RegistryError::NotFound("(virtual server table unavailable)".into())
}
