import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// The transcode DAG, declared in one place:
///
///     probe ──► plan ──► analyze ──► reduce ──► encode (video segments, audio pieces) ──┐
///                 └────► audio (the other tracks) ─────────────────────────────────────┴► mux ──► verify ──► publish
///
/// analyze and reduce do nothing without `--analyze` and `--reduce` (the context across segments).
///
/// A node starts, on a thread of its own, as soon as the nodes it needs are done, so the audio runs beside the
/// encode. The plan cuts the audio tracks that go in pieces too: their pieces are elements of the encode, on the
/// same pool (or job array) as the video's segments. Adding a node is one file under Stages/ (a `Stage`) and one line here.
enum TranscodeDAG {
    static let stages: [DAGNode] = [
        .init(ProbeStage.self),
        .init(PlanStage.self),
        .init(AnalyzeStage.self),
        .init(ReduceStage.self),
        .init(EncodeStage.self),
        .init(AudioStage.self),
        .init(MergeStage.self),
        .init(VerifyStage.self),
        .init(PublishStage.self),
    ]

    /// Walks the DAG for one run. Returns `.detached` when a stage handed its work elsewhere (the walk stops
    /// there). After a failure, or a stop request (first Ctrl-C), no further node starts and the running ones are
    /// waited for; the error thrown is a lost lease's if any (that process must stop without writing), else
    /// the first failed node's in declaration order.
    static func run(_ ctx: StageContext, stages: [DAGNode] = TranscodeDAG.stages) throws(VSliceError) -> StageOutcome {
        struct Walk {
            var started = Set<Node>()
            var done = Set<Node>()
            var errors: [Node: VSliceError] = [:]
            var detached = false
            var running = 0
        }
        let walk = Mutex(Walk())
        let finished = DispatchSemaphore(value: 0)
        while true {
            // What can start, and whether anything still runs, read together: a node that ends between two
            // separate looks would leave the nodes it unblocks unstarted.
            let (ready, running): ([DAGNode], Int) = walk.withLock { w in
                guard w.errors.isEmpty, !w.detached, !Cancellation.stopRequested else { return ([], w.running) }
                return (stages.filter { !w.started.contains($0.node) && $0.inputs.allSatisfy(w.done.contains) }, w.running)
            }
            for stage in ready {
                walk.withLock { $0.started.insert(stage.node); $0.running += 1 }
                _ = WorkerPool.spawn { () throws(VSliceError) in
                    let outcome: Result<StageOutcome, VSliceError>
                    do throws(VSliceError) { outcome = .success(try stage.run(ctx)) } catch { outcome = .failure(error) }
                    walk.withLock { w in
                        switch outcome {
                        case .success(.done): w.done.insert(stage.node)
                        case .success(.detached): w.detached = true
                        case .failure(let e): w.errors[stage.node] = e
                        }
                        w.running -= 1
                    }
                    finished.signal()
                }
            }
            // Nothing could start: wait for a running node to end (which may make others ready), or stop. A node
            // that ended after the look above has signalled already, so the wait returns at once.
            if ready.isEmpty {
                if running == 0 { break }
                finished.wait()
            }
        }
        let w = walk.withLock { $0 }
        if let lost = w.errors.values.first(where: { $0.kind == .resumeRefused }) { throw lost }
        if let first = stages.lazy.compactMap({ w.errors[$0.node] }).first { throw first }
        if w.detached { return .detached }
        if w.done.count < stages.count {
            throw VSliceError(.interrupted, "transcode", path: ctx.input, reason: "interrupted; resume by running the same command")
        }
        return .done
    }
}

/// A stage as the walker holds it: its node, the nodes it needs, and how to run it.
struct DAGNode: Sendable {
    let node: Node
    let inputs: [Node]
    let run: @Sendable (StageContext) throws(VSliceError) -> StageOutcome

    init<S: Stage>(_ stage: S.Type) {
        node = S.node
        inputs = S.inputs
        run = { (ctx) throws(VSliceError) in try S.run(ctx) }
    }
}
