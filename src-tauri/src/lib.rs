//! votehub-desktop: the hub in the same process as a window that organisers
//! and moderators run the room from. A thin shell: `host` runs the hub,
//! `commands` and the `hub-changed` event are doors onto its API, and
//! `settings` persists what the organiser chose.

mod commands;
mod host;
mod logging;
mod settings;

use tauri::{Manager, RunEvent};

use crate::host::Host;
use crate::settings::Settings;

pub fn run() {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::default().build())
        .manage(Host::default())
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::create_session,
            commands::edit_session,
            commands::delete_session,
            commands::open_session,
            commands::extend_session,
            commands::reorder,
            commands::import_agenda,
            commands::start_meeting,
            commands::meetings,
            commands::minutes_html,
            commands::close_session,
            commands::broadcast,
            commands::register_voters,
            commands::import_roll,
            commands::roll_page,
            commands::roll_names,
            commands::edit_voter,
            commands::reissue_code,
            commands::give_proxy,
            commands::revoke_proxy,
            commands::set_presence,
            commands::voted,
            commands::cards_html,
            commands::export_session,
            commands::export_audit,
            commands::backup,
            commands::export_roll,
            commands::qr_svg,
            commands::get_settings,
            commands::save_settings,
            commands::restart_hub,
        ])
        .setup(|app| {
            let handle = app.handle().clone();
            let settings = Settings::load(&handle);
            let launch = settings.launch();
            if let Ok(launch) = &launch {
                logging::init(&launch.data);
            }
            tauri::async_runtime::spawn(async move {
                let host = handle.state::<Host>();
                match launch {
                    Ok(launch) => {
                        host.restart(&handle, launch).await;
                    }
                    // A bad VOTEHUB_BIND: shown in the window like any start failure.
                    Err(e) => {
                        host.fail(&handle, e.to_string());
                    }
                }
            });
            Ok(())
        })
        .build(tauri::generate_context!("tauri.conf.json"));
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("votehub-desktop: cannot open the window: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            let host = handle.state::<Host>();
            tauri::async_runtime::block_on(host.stop());
        }
    });
}
