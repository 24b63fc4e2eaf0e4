import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport
/// probe: the input was probed before the task was claimed (bad input is refused before any work); this node
/// records it in the ledger and checks there is a video stream to cut.
enum ProbeStage: Stage {
    static let node = Node.probe
    static let inputs: [Node] = []

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        try ctx.traced(node) { (_) throws(VSliceError) in
            guard ctx.probe.video != nil else {
                throw VSliceError(.input, "probe", path: ctx.input, reason: "no video stream")
            }
            return StepRecord(value: (), framesOut: ctx.probe.report.frameCount, fixed: FixedCost(processSeconds: ctx.preflight.wall), before: ctx.preflight)
        }
        return .done
    }
}
