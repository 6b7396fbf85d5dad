fn main() {
    votehub_desktop::run()
}
