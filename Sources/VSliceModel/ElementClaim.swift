import Foundation
import VSliceSupport

/// A worker's hold on one element of a task, for workers that stay up (`vslice segment --claim`: a Slurm array
/// element of `--workers-stay-up`, a Kubernetes pod): `seg-NNNNN.claim` in the work folder, written whole under a
/// name of its own and then linked to its final name, so that one worker alone holds an element. Its holder
/// touches it every few seconds (its heartbeat: the file's mtime). A claim its worker left is taken back only
/// when the engine says that worker is gone (the coordinator, asking `squeue`) or its heartbeat is stale (a
/// worker, after `staleSeconds`); taking back renames it away first, so that one taker wins.
public struct ElementClaim: Codable, Sendable, Equatable {
    /// The worker: "SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID" under Slurm, the pod's name under Kubernetes, else
    /// "HOST:PID".
    public var worker: String
    public var host: String
    public var pid: Int
    /// The node the scheduler says it runs on, when it says.
    public var node: String?
    /// The worker's own job (Slurm: SLURM_JOB_ID of its array element).
    public var job: String?
    public var claimedAt: Double

    enum CodingKeys: String, CodingKey {
        case worker, host, pid, node, job
        case claimedAt = "claimed_at"
    }

    public init(worker: String, host: String, pid: Int, node: String? = nil, job: String? = nil, claimedAt: Double) {
        self.worker = worker
        self.host = host
        self.pid = pid
        self.node = node
        self.job = job
        self.claimedAt = claimedAt
    }

    /// This process as a worker, named from the scheduler's environment.
    public static func me(environment env: [String: String], now: Double = Date().timeIntervalSince1970) -> ElementClaim {
        let worker: String
        if let array = env["SLURM_ARRAY_JOB_ID"], let k = env["SLURM_ARRAY_TASK_ID"] {
            worker = "\(array)_\(k)"
        } else if env["JOB_COMPLETION_INDEX"] != nil, let pod = env["HOSTNAME"] {
            worker = pod
        } else {
            worker = "\(Host.name):\(getpid())"
        }
        return ElementClaim(worker: worker, host: Host.name, pid: Int(getpid()), node: env["SLURMD_NODENAME"] ?? env["VSLICE_RAY_NODE_ID"],
                            job: env["SLURM_JOB_ID"], claimedAt: now)
    }

    /// Seconds without a heartbeat after which a worker may take a claim back: `VSLICE_CLAIM_STALE_SECONDS`, else 60.
    public static func staleSeconds(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Double {
        env["VSLICE_CLAIM_STALE_SECONDS"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 60
    }

    /// Seconds between a holder's heartbeats.
    public static let beatSeconds = 2.0

    public static func fileName(_ index: Int) -> String { String(format: "seg-%05d.claim", index) }

    static func path(_ workDir: String, _ index: Int) -> String { (workDir as NSString).appendingPathComponent(fileName(index)) }

    /// Claims element `index` for `me`: true when this worker now holds it, false when another does.
    public static func take(_ index: Int, as me: ElementClaim, workDir: String) -> Bool {
        let final = path(workDir, index)
        let tmp = (workDir as NSString).appendingPathComponent(".\(fileName(index)).\(UUID().uuidString.prefix(8)).tmp")
        guard let data = try? JSONEncoder().encode(me), FileManager.default.createFile(atPath: tmp, contents: data) else { return false }
        defer { unlink(tmp) }
        return link(tmp, final) == 0
    }

    /// The claim on `index`, and seconds since its last heartbeat; nil when none.
    public static func read(_ index: Int, workDir: String, now: Double = Date().timeIntervalSince1970) -> (claim: ElementClaim, age: Double)? {
        read(path: path(workDir, index), now: now)
    }

    private static func read(path: String, now: Double) -> (claim: ElementClaim, age: Double)? {
        guard let data = FileManager.default.contents(atPath: path),
              let c = try? JSONDecoder().decode(ElementClaim.self, from: data) else { return nil }
        let mtime = ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date)?.timeIntervalSince1970
        return (c, max(0, now - (mtime ?? c.claimedAt)))
    }

    /// Every claim in the work folder, by element index.
    public static func all(workDir: String) -> [Int: ElementClaim] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: workDir) else { return [:] }
        var out: [Int: ElementClaim] = [:]
        for name in names where name.hasPrefix("seg-") && name.hasSuffix(".claim") {
            guard let i = Int(name.dropFirst(4).dropLast(6)), let c = read(i, workDir: workDir)?.claim else { continue }
            out[i] = c
        }
        return out
    }

    /// The holder's heartbeat (the claim's mtime set to now).
    public static func beat(_ index: Int, workDir: String) {
        _ = utimes(path(workDir, index), nil)
    }

    /// Takes back the claim on `index` when it is still `holder`'s (whose worker is gone, or stale): true when
    /// this call removed it. Renamed away first, so that of two takers one wins; a claim that changed meanwhile
    /// (taken anew by a live worker) is put back.
    @discardableResult
    public static func release(_ index: Int, workDir: String, holder: ElementClaim) -> Bool {
        let final = path(workDir, index)
        let aside = final + ".released-\(UUID().uuidString.prefix(8))"
        guard rename(final, aside) == 0 else { return false }
        defer { unlink(aside) }
        if let c = read(path: aside, now: 0)?.claim, c != holder {
            _ = link(aside, final)
            return false
        }
        return true
    }
}
