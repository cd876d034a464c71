//! The client session of `tracegap check|report --cluster df://HOST:PORT`.

use std::net::ToSocketAddrs;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;

use crate::ClusterError;
use crate::object_stores::{client_session_config, runtime_env};

/// How long the scheduler may take to accept a TCP connection before `connect` gives up.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a session whose queries run on the Ballista cluster at `url` (`df://HOST:PORT`).
/// The scheduler must be reachable now; the checks' functions and tables are registered on the
/// session afterwards by the analysis (Ballista wants them registered after connecting).
pub async fn connect(url: &str) -> Result<SessionContext, ClusterError> {
    let address = scheduler_address(url)?;
    let reachable = tokio::task::spawn_blocking(move || reach(&address)).await;
    match reachable {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(ClusterError::Url { url: url.to_owned(), reason }),
        Err(error) => return Err(ClusterError::Url { url: url.to_owned(), reason: error.to_string() }),
    }
    let connect_failed = |source| ClusterError::Connect { url: url.to_owned(), source };
    let config = client_session_config().map_err(connect_failed)?;
    let runtime = runtime_env(&config, None).map_err(connect_failed)?;
    let state =
        SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
    SessionContext::remote_with_state(url, state).await.map_err(connect_failed)
}

/// `HOST:PORT` of a `df://HOST:PORT` URL.
pub fn scheduler_address(url: &str) -> Result<String, ClusterError> {
    let invalid = |reason: &str| ClusterError::Url { url: url.to_owned(), reason: reason.to_owned() };
    let rest = url.strip_prefix("df://").ok_or_else(|| invalid("expected df://HOST:PORT"))?;
    let address = rest.trim_end_matches('/');
    let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid("no port (df://HOST:PORT)"))?;
    if host.is_empty() || address.contains('/') {
        return Err(invalid("expected df://HOST:PORT"));
    }
    port.parse::<u16>().map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    Ok(address.to_owned())
}

fn reach(address: &str) -> Result<(), String> {
    let addresses = address.to_socket_addrs().map_err(|e| format!("cannot resolve {address}: {e}"))?;
    let mut last = format!("{address} resolves to no address");
    for candidate in addresses {
        match std::net::TcpStream::connect_timeout(&candidate, REACH_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(error) => last = format!("no scheduler answers at {candidate}: {error}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_problem() {
        assert_eq!(scheduler_address("df://localhost:50050").unwrap(), "localhost:50050");
        assert_eq!(scheduler_address("df://10.0.0.2:50050/").unwrap(), "10.0.0.2:50050");
        for (url, reason) in [
            ("http://localhost:50050", "expected df://HOST:PORT"),
            ("df://localhost", "no port"),
            ("df://localhost:port", "not a number"),
            ("df://:50050", "expected df://HOST:PORT"),
        ] {
            let error = scheduler_address(url).unwrap_err().to_string();
            assert!(error.contains(reason) && error.contains(url), "{url}: {error}");
        }
    }

    #[tokio::test]
    async fn an_absent_scheduler_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let Err(error) = connect(&format!("df://127.0.0.1:{port}")).await else { panic!("connected to nothing") };
        let error = error.to_string();
        assert!(error.contains("no scheduler answers at 127.0.0.1"), "{error}");
    }
}
