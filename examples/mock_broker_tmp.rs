use rdkafka::mocking::MockCluster;
fn main() {
    let mock = MockCluster::new(1).unwrap();
    std::fs::write("/tmp/mock-bootstrap", mock.bootstrap_servers()).unwrap();
    println!("{}", mock.bootstrap_servers());
    std::thread::sleep(std::time::Duration::from_secs(7200));
}
