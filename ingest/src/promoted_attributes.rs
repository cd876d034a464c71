//! Which attributes are promoted to their own columns, and how they are found.
//!
//! The checks read a few attributes on nearly every span (service, peer, recorded propagation
//! headers, GTS transaction ids). Reading them from the attribute maps would make every check
//! scan the maps; promoting them once at ingest makes them plain string columns.

use crate::otlp_messages::{AnyValue, KeyValue, Value};

/// The attribute keys holding GTS (or Seata, ServiceComb...) transaction ids. Looked up on the
/// span first, then on its resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtsKeys {
    /// Global transaction id (default `gts.global_tx_id`).
    pub global_tx_id: String,
    /// Branch transaction id (default `gts.branch_tx_id`).
    pub branch_tx_id: String,
    /// Parent branch transaction id (default `gts.parent_branch_tx_id`).
    pub parent_branch_tx_id: String,
}

impl Default for GtsKeys {
    fn default() -> Self {
        GtsKeys {
            global_tx_id: "gts.global_tx_id".into(),
            branch_tx_id: "gts.branch_tx_id".into(),
            parent_branch_tx_id: "gts.parent_branch_tx_id".into(),
        }
    }
}

/// Promoted values found on a resource.
#[derive(Debug, Default, Clone)]
pub struct ResourcePromotions {
    /// `service.name`.
    pub service_name: Option<String>,
    /// `service.instance.id`.
    pub service_instance_id: Option<String>,
    /// `host.name`.
    pub host_name: Option<String>,
    /// `host.id`.
    pub host_id: Option<String>,
    /// `host.ip` (Zipkin endpoints and Jaeger's `ip` tag import as it).
    pub host_ip: Option<String>,
    /// GTS ids on the resource: global, branch, parent branch.
    pub gts: [Option<String>; 3],
}

/// Promoted values found on a span.
#[derive(Debug, Default, Clone)]
pub struct SpanPromotions {
    /// `peer.service`.
    pub peer_service: Option<String>,
    /// `server.address`, else the older `net.peer.name`.
    pub server_address: Option<String>,
    /// `http.route`.
    pub http_route: Option<String>,
    /// `db.system.name`, else the older `db.system`.
    pub db_system: Option<String>,
    /// `rpc.system`.
    pub rpc_system: Option<String>,
    /// `messaging.system`.
    pub messaging_system: Option<String>,
    /// Recorded propagation headers, in the order of [`crate::span_schema::HEADER_COLUMNS`].
    pub headers: [Option<String>; 7],
    /// GTS ids on the span: global, branch, parent branch.
    pub gts: [Option<String>; 3],
}

/// Header names in the order of [`crate::span_schema::HEADER_COLUMNS`].
const HEADER_NAMES: [&str; 7] =
    ["traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"];

/// Attribute-key prefixes under which instrumentations record request headers.
const HEADER_PREFIXES: [&[u8]; 2] = [b"http.request.header.", b"rpc.request.metadata."];

/// Finds the promoted values of a resource's attributes.
pub fn resource_promotions(attributes: &[KeyValue], gts: &GtsKeys) -> ResourcePromotions {
    let mut found = ResourcePromotions::default();
    for attribute in attributes {
        let key = attribute.key.as_ref();
        let slot = match key {
            b"service.name" => &mut found.service_name,
            b"service.instance.id" => &mut found.service_instance_id,
            b"host.name" => &mut found.host_name,
            b"host.id" => &mut found.host_id,
            b"host.ip" => &mut found.host_ip,
            _ => match gts_index(key, gts) {
                Some(index) => &mut found.gts[index],
                None => continue,
            },
        };
        if slot.is_none() {
            *slot = scalar_text(attribute.value.as_ref());
        }
    }
    found
}

/// Finds the promoted values of a span's attributes.
pub fn span_promotions(attributes: &[KeyValue], gts: &GtsKeys) -> SpanPromotions {
    let mut found = SpanPromotions::default();
    let mut older_server_address = None;
    let mut older_db_system = None;
    for attribute in attributes {
        let key = attribute.key.as_ref();
        let slot = match key {
            b"peer.service" => &mut found.peer_service,
            b"server.address" => &mut found.server_address,
            b"net.peer.name" => &mut older_server_address,
            b"http.route" => &mut found.http_route,
            b"db.system.name" => &mut found.db_system,
            b"db.system" => &mut older_db_system,
            b"rpc.system" => &mut found.rpc_system,
            b"messaging.system" => &mut found.messaging_system,
            _ => {
                if let Some(index) = header_index(key) {
                    &mut found.headers[index]
                } else if let Some(index) = gts_index(key, gts) {
                    &mut found.gts[index]
                } else {
                    continue;
                }
            }
        };
        if slot.is_none() {
            *slot = scalar_text(attribute.value.as_ref());
        }
    }
    if found.server_address.is_none() {
        found.server_address = older_server_address;
    }
    if found.db_system.is_none() {
        found.db_system = older_db_system;
    }
    found
}

fn gts_index(key: &[u8], gts: &GtsKeys) -> Option<usize> {
    if key == gts.global_tx_id.as_bytes() {
        Some(0)
    } else if key == gts.branch_tx_id.as_bytes() {
        Some(1)
    } else if key == gts.parent_branch_tx_id.as_bytes() {
        Some(2)
    } else {
        None
    }
}

/// The index of the propagation header an attribute key records, accepting both the current
/// dash spelling (`http.request.header.x-b3-traceid`) and the underscore spelling of data written
/// before semantic conventions 1.23 (`x_b3_traceid`), in any letter case.
pub fn header_index(key: &[u8]) -> Option<usize> {
    let rest = HEADER_PREFIXES.iter().find_map(|prefix| key.strip_prefix(*prefix))?;
    HEADER_NAMES.iter().position(|name| {
        name.len() == rest.len()
            && name.bytes().zip(rest).all(|(expected, &got)| {
                let got = if got == b'_' { b'-' } else { got.to_ascii_lowercase() };
                expected == got
            })
    })
}

/// The text of a scalar value; for an array (how headers are recorded), its first element.
/// `None` for an absent value, a key-value list, or text that is not UTF-8.
pub fn scalar_text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        Value::String(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Array(array) => scalar_text(array.values.first()),
        Value::KeyValueList(_) | Value::Bytes(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_messages::ArrayValue;
    use bytes::Bytes;

    fn string_attribute(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Some(AnyValue { value: Some(Value::String(Bytes::copy_from_slice(value.as_bytes()))) }),
        }
    }

    #[test]
    fn header_keys_in_both_spellings_and_any_case() {
        assert_eq!(header_index(b"http.request.header.traceparent"), Some(0));
        assert_eq!(header_index(b"http.request.header.x-b3-traceid"), Some(2));
        assert_eq!(header_index(b"http.request.header.x_b3_traceid"), Some(2));
        assert_eq!(header_index(b"rpc.request.metadata.X-B3-SpanId"), Some(3));
        assert_eq!(header_index(b"http.request.header.x-b3-flags"), Some(6));
        assert_eq!(header_index(b"http.response.header.b3"), None);
        assert_eq!(header_index(b"http.request.header.b3x"), None);
    }

    #[test]
    fn header_recorded_as_string_array_takes_first_value() {
        let attribute = KeyValue {
            key: Bytes::from_static(b"http.request.header.b3"),
            value: Some(AnyValue {
                value: Some(Value::Array(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::String(Bytes::from_static(
                            b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
                        ))),
                    }],
                })),
            }),
        };
        let found = span_promotions(&[attribute], &GtsKeys::default());
        assert_eq!(found.headers[1].as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"));
    }

    #[test]
    fn newer_keys_win_over_older_ones_whatever_the_order() {
        let found = span_promotions(
            &[string_attribute("db.system", "redis"), string_attribute("db.system.name", "valkey")],
            &GtsKeys::default(),
        );
        assert_eq!(found.db_system.as_deref(), Some("valkey"));
        let found = span_promotions(&[string_attribute("net.peer.name", "old")], &GtsKeys::default());
        assert_eq!(found.server_address.as_deref(), Some("old"));
    }

    #[test]
    fn gts_keys_are_configurable() {
        let keys = GtsKeys { global_tx_id: "TX_XID".into(), ..GtsKeys::default() };
        let found =
            span_promotions(&[string_attribute("TX_XID", "xid-1"), string_attribute("gts.global_tx_id", "no")], &keys);
        assert_eq!(found.gts[0].as_deref(), Some("xid-1"));
        let found = resource_promotions(&[string_attribute("gts.branch_tx_id", "b1")], &keys);
        assert_eq!(found.gts[1].as_deref(), Some("b1"));
    }

    #[test]
    fn hosts_are_promoted_from_the_resource() {
        let found = resource_promotions(
            &[string_attribute("host.ip", "10.0.0.7"), string_attribute("host.name", "api-1")],
            &GtsKeys::default(),
        );
        assert_eq!(found.host_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(found.host_name.as_deref(), Some("api-1"));
        assert_eq!(found.host_id, None);
    }
}
