import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// A `vslice segment` worker that stays up: one process works through many elements of a task, so that the
/// scheduler's latency and the process's start are paid once per worker, and a `--process-persistent` program
/// stays loaded across its elements (one `PersistentProcessor`, as a local job slot keeps). Each element is
/// still one `SegmentWorker.run`: its own trace record, its sealed file linked into place (a late worker cannot
/// replace it). Two ways to get the elements:
///
/// - `claiming` (`vslice segment --claim`: a Slurm array element of `--workers-stay-up`, a Kubernetes pod): the
///   worker claims the next element no one holds (`ElementClaim`, an atomic link in the work folder) until none
///   is left. It takes back a claim whose heartbeat is stale; the coordinator takes back those of workers the
///   scheduler no longer holds.
/// - `serving` (`vslice segment --serve`: a Ray actor's one process): the indices come one per line on stdin,
///   "INDEX [ATTEMPT]", and each gets one line back on stdout, "INDEX EXIT_CODE".
public final class WorkerLoop {
    let workDir: String
    let environment: [String: String]
    let order: WorkOrder
    /// The kept program (`--process-persistent`), nil otherwise.
    let host: PersistentProcessor?
    private(set) var elementsRun = 0
    /// A serving worker waits for its next index (no element running): a stop signal may end it at once.
    public static let waitingForInput = Atomic<Bool>(false)

    public init(workDir: String, environment: [String: String]) throws(VSliceError) {
        self.workDir = Paths.absolute(workDir)
        self.environment = environment
        order = try WorkOrder.read(workDir: self.workDir)
        host = order.settings.process.flatMap { $0.isPersistent ? PersistentProcessor(settings: $0) : nil }
    }

    deinit { host?.close() }

    /// One element, with the environment `extra` adds (a Ray attempt's ID). Deterministic failures and Ctrl-C
    /// are thrown; a failure worth a retry is returned (its record is written).
    public func run(_ index: Int, extra: [String: String] = [:]) throws(VSliceError) -> Result<SegmentWorker.Outcome, VSliceError> {
        let env = environment.merging(extra) { $1 }
        let first = elementsRun == 0
        elementsRun += 1
        do throws(VSliceError) {
            return .success(try SegmentWorker.run(workDir: workDir, index: index, environment: env, host: host, firstOfProcess: first))
        } catch {
            if error.failsEveryTime || error.kind == .interrupted || Cancellation.stopRequested { throw error }
            return .failure(error)
        }
    }

    /// Claims and runs elements until none is left to claim; returns how many it ran. A deterministic failure
    /// or Ctrl-C ends the worker (thrown, its claim kept: the coordinator decides); a failure worth a retry
    /// releases the claim so that a worker takes the element again, unless `maxAttempts` failed records of it
    /// are there already.
    public func claiming(maxAttempts: Int = 3, onElement: (Int, Result<SegmentWorker.Outcome, VSliceError>) -> Void = { _, _ in })
        throws(VSliceError) -> Int {
        let me = ElementClaim.me(environment: environment)
        var ran = 0
        while !Cancellation.stopRequested, let i = claimNext(as: me, maxAttempts: maxAttempts) {
            let beat = PeriodicThread(every: ElementClaim.beatSeconds) { [workDir] in ElementClaim.beat(i, workDir: workDir) }
            let result: Result<SegmentWorker.Outcome, VSliceError>
            do throws(VSliceError) { result = try run(i) } catch {
                beat.stop()
                throw error
            }
            beat.stop()
            ran += 1
            if case .failure = result { ElementClaim.release(i, workDir: workDir, holder: me) }
            onElement(i, result)
        }
        return ran
    }

    /// The elements in the executor's order (the video segments longest first, then the audio pieces).
    var elementOrder: [Int] {
        order.plan.segments.sorted { ($0.frameCount, -$0.index) > ($1.frameCount, -$1.index) }.map(\.index)
            + (0..<(order.audioPieces?.count ?? 0)).map { order.plan.segments.count + $0 }
    }

    /// The first element in order that is not done, not failed for good, and that this worker could claim: free,
    /// or held by a claim whose heartbeat is stale (taken back).
    func claimNext(as me: ElementClaim, maxAttempts: Int) -> Int? {
        let records = Dictionary(grouping: SegmentTraceRecord.all(workDir: workDir), by: \.segment)
        let stale = ElementClaim.staleSeconds(environment: environment)
        for i in elementOrder {
            let mine = records[i] ?? []
            if mine.contains(where: { $0.status == .done }) || mine.last?.deterministicFailure == true { continue }
            if mine.filter({ $0.status == .failed }).count >= maxAttempts { continue }
            var claimer = me
            claimer.claimedAt = Date().timeIntervalSince1970
            // An element done between the look and the claim is not run again: its done record is found first.
            if ElementClaim.take(i, as: claimer, workDir: workDir) { return i }
            if let held = ElementClaim.read(i, workDir: workDir), held.age > stale,
               ElementClaim.release(i, workDir: workDir, holder: held.claim), ElementClaim.take(i, as: claimer, workDir: workDir) {
                return i
            }
        }
        return nil
    }

    /// Reads "INDEX [ATTEMPT]" lines from `input` until it ends (or Ctrl-C), runs each, and answers "INDEX CODE"
    /// on `output`. A deterministic failure answers its worker exit code and the loop goes on (the coordinator
    /// decides); Ctrl-C ends it.
    public func serving(input: FileHandle, output: FileHandle) throws(VSliceError) {
        var buffered = Data()
        while !Cancellation.stopRequested {
            Self.waitingForInput.store(true, ordering: .sequentiallyConsistent)
            let next = Self.nextLine(input, &buffered)
            Self.waitingForInput.store(false, ordering: .sequentiallyConsistent)
            guard let line = next else { return }
            let f = line.split(separator: " ")
            guard let i = f.first.flatMap({ Int($0) }) else { continue }
            var extra: [String: String] = [:]
            if f.count > 1 { extra["VSLICE_RAY_ATTEMPT"] = String(f[1]) }
            let code: Int32
            do throws(VSliceError) {
                switch try run(i, extra: extra) {
                case .success: code = 0
                case .failure(let e): code = e.workerExitCode
                }
            } catch {
                if error.kind == .interrupted || Cancellation.stopRequested { throw error }
                code = error.workerExitCode
            }
            output.write(Data("\(i) \(code)\n".utf8))
        }
    }

    private static func nextLine(_ input: FileHandle, _ buffered: inout Data) -> String? {
        while true {
            if let nl = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[buffered.startIndex..<nl], as: UTF8.self)
                buffered = Data(buffered[(nl + 1)...])
                return line.trimmingCharacters(in: .whitespaces)
            }
            let chunk = input.availableData
            if chunk.isEmpty { return buffered.isEmpty ? nil : String(decoding: buffered, as: UTF8.self) }
            buffered.append(chunk)
        }
    }
}
