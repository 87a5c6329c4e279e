//! How the app puts the server's values into words people use.

/// A date and time such as "Tuesday 3 June 2025 at 10:00", in the browser's
/// own time zone. The browser's date formatter does the work, so the app
/// carries no calendar tables of its own. Anything the browser cannot read
/// as a date is shown as it came.
#[cfg(target_family = "wasm")]
pub fn date_and_time(rfc3339: &str) -> String {
    use wasm_bindgen::JsValue;

    let date = js_sys::Date::new(&JsValue::from_str(rfc3339));
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    let options = js_sys::Object::new();
    for (key, value) in [
        ("weekday", "long"),
        ("day", "numeric"),
        ("month", "long"),
        ("year", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
    ] {
        // Setting a plain property on a fresh object cannot fail.
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    String::from(date.to_locale_string("en-GB", &options))
}

/// Outside a browser there is no date formatter; show the date as it came.
#[cfg(not(target_family = "wasm"))]
pub fn date_and_time(rfc3339: &str) -> String {
    rfc3339.to_owned()
}
