//! The function registry of every cluster process: Ballista's defaults plus the checks' helper
//! functions (`hex_id`, `id_problem`, `b3_part`, `traceparent_part`).

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::logical_expr::ScalarUDF;

/// The checks' helper functions, shared.
pub fn helper_functions() -> Vec<Arc<ScalarUDF>> {
    tracegap_analyze::udfs::helper_functions().into_iter().map(Arc::new).collect()
}

/// Ballista's default functions with the helper functions added: what executors decode plans
/// with.
pub fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for function in helper_functions() {
        registry.scalar_functions.insert(function.name().to_owned(), function);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_holds_every_helper_function_and_the_defaults() {
        let registry = function_registry();
        for name in ["hex_id", "id_problem", "b3_part", "traceparent_part", "coalesce", "to_char"] {
            assert!(registry.scalar_functions.contains_key(name), "{name} missing");
        }
    }
}
