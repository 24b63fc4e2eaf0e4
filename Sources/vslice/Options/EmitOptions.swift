import ArgumentParser
import Foundation
import VSliceKit

/// `vslice plan --emit k8s-job`: a Kubernetes Indexed Job manifest for a planned task.
struct EmitOptions: ParsableArguments {
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case k8sJob = "k8s-job"
    }

    @Option(help: "Write a manifest instead of the plan: k8s-job (an Indexed Job of `vslice segment`, JSON).")
    var emit: Kind?

    @Option(help: "With --emit: the task's work folder, as `transcode --executor external --detach` printed it.")
    var taskDir: String?

    @Option(help: "With --emit k8s-job: the container image (it must have vslice on PATH).")
    var image = "vslice:\(VSliceKit.version)"

    @Option(help: "With --emit k8s-job: a PersistentVolumeClaim holding the input and the work folder.")
    var pvc: String?

    @Option(help: "With --emit k8s-job and --pvc: where the volume is mounted (default: the task folder's top folder).")
    var mountPath: String?

    @Option(help: "With --emit k8s-job: pod attempts per segment (backoffLimitPerIndex = this − 1).")
    var maxAttempts = 3

    /// Writes the manifest on stdout; false when nothing is to be emitted.
    func run(input: String) throws -> Bool {
        guard emit != nil else { return false }
        guard let taskDir else {
            throw VSliceError(.usage, "emit k8s-job", reason: "--emit needs --task-dir: the work folder of a task planned with `transcode --executor external --detach`")
        }
        let data = try KubernetesJob.manifest(input: input, taskDir: taskDir,
                                              options: .init(image: image, pvc: pvc, mountPath: mountPath, maxAttempts: maxAttempts))
        FileHandle.standardOutput.write(data + Data("\n".utf8))
        return true
    }
}
