//! The ratatui control room: app loop, keymap, views, widgets, theme, sanitize.
