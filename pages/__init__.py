"""The app's pages (one file each, run by ``st.navigation``) and their shared helpers."""
