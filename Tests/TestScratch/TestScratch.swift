import Foundation

/// Everything a test process writes lives under one folder of its own, `$TMPDIR/vslice-tests-PID-XXXXXX`,
/// removed when the process exits (`atexit`; Swift Testing has no global teardown). A folder left by a run that
/// died (killed, crashed) is removed by the next run: each run holds an `flock` on its folder's `.lock` for as
/// long as it lives, so a lock that can be taken belongs to a run that has ended — in any PID namespace, whatever
/// PID it had. A target of its own, so that both test targets share it.
public enum TestScratch {
    public static let prefix = "vslice-tests-"

    public static let root: String = {
        let tmp = FileManager.default.temporaryDirectory.path
        removeEnded(in: tmp)
        let name = "\(prefix)\(getpid())-\(UUID().uuidString.prefix(6))"
        // Made under a hidden name and renamed once locked: a sweep never sees it unlocked.
        let building = tmp + "/." + name, dir = tmp + "/" + name
        precondition(mkdir(building, 0o755) == 0, "cannot make \(building): \(String(cString: strerror(errno)))")
        // Not inherited by the programs the tests start (daemons among them), so it ends with this process.
        let fd = open(building + "/.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        precondition(fd >= 0 && flock(fd, LOCK_EX) == 0, "cannot lock \(building)/.lock")
        precondition(rename(building, dir) == 0, "cannot rename \(building)")
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.root) }
        return dir
    }()

    /// The root as a URL: what the tests use instead of `FileManager.default.temporaryDirectory`.
    public static var url: URL { URL(fileURLWithPath: root, isDirectory: true) }

    /// Removes the folders of runs that have ended: their lock can be taken, or they have none left.
    public static func removeEnded(in tmp: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
        for name in names where name.hasPrefix(prefix) {
            let dir = tmp + "/" + name
            let fd = open(dir + "/.lock", O_RDWR | O_CLOEXEC)
            if fd < 0 && errno != ENOENT { continue }
            defer { if fd >= 0 { close(fd) } }
            if fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0 { try? FileManager.default.removeItem(atPath: dir) }
        }
    }
}
