//! Cursor pagination of list results. A cursor is opaque to clients; here it is the offset of
//! the next page, so that every page of a list can be fetched independently.

use super::jsonrpc::RpcError;
use serde_json::Value;

/// The page of `items` that `params.cursor` asks for, and the cursor of the next one.
pub fn page<'a, T>(
    items: &'a [T],
    params: Option<&Value>,
    size: usize,
) -> Result<(&'a [T], Option<String>), RpcError> {
    let start = match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(cursor)) => decode(cursor)
            .filter(|&offset| offset <= items.len())
            .ok_or_else(|| RpcError::invalid_params(format!("invalid cursor `{cursor}`")))?,
        Some(_) => return Err(RpcError::invalid_params("`cursor` must be a string")),
    };
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| encode(end));
    Ok((&items[start..end], next))
}

fn encode(offset: usize) -> String {
    format!("o{offset:x}")
}

fn decode(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix('o')?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<u32> = (0..7).collect();
        let (first, next) = page(&items, None, 3).unwrap();
        assert_eq!(first, [0, 1, 2]);
        let params = json!({"cursor": next.unwrap()});
        let (second, next) = page(&items, Some(&params), 3).unwrap();
        assert_eq!(second, [3, 4, 5]);
        let params = json!({"cursor": next.unwrap()});
        let (third, next) = page(&items, Some(&params), 3).unwrap();
        assert_eq!((third, next), (&[6][..], None));
    }

    #[test]
    fn a_forged_cursor_is_invalid_params() {
        let items = [1, 2];
        for cursor in [json!("nonsense"), json!("o99"), json!(5)] {
            let err = page(&items, Some(&json!({ "cursor": cursor })), 1).unwrap_err();
            assert_eq!(err.code, super::super::jsonrpc::INVALID_PARAMS);
        }
    }
}
