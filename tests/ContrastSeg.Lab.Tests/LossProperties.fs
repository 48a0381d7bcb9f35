/// FsCheck properties of the pixel contrastive loss: invariances the definition implies and the
/// numerical guarantees the kit promises. Inputs are drawn from FsCheck-chosen seeds and sizes.
module ContrastSeg.Lab.Tests.LossProperties

open System
open Expecto
open FsCheck
open TorchSharp
open ContrastSeg.Losses

type T = torch.Tensor

/// F# does not apply TorchSharp's implicit number -> Scalar conversion everywhere.
let private sc (x: int64) : Scalar = Scalar.op_Implicit x

let private config = { FsCheckConfig.defaultConfig with maxTest = 40 }

/// A loss with no resize, so the inputs are exactly the pixels the property talks about.
let private lossFor variant =
    new PixelContrastiveLoss(PixelContrastiveOptions(Variant = variant, ResizeTo = Nullable(), Temperature = 0.2))

/// Random unit embeddings [1, d, 1, n] and labels [1, 1, n] with values 0..classes-1 or 255.
let private draw (seed: int) (n: int) (d: int) (classes: int) =
    use gen = new torch.Generator(uint64 (abs seed), torch.CPU)
    let e = torch.nn.functional.normalize(torch.randn([| 1L; int64 d; 1L; int64 n |], generator = gen), dim = 1L)
    let labels = torch.randint(0L, int64 classes + 1L, [| 1L; 1L; int64 n |], generator = gen)
    labels.masked_fill_(torch.eq(labels, torch.tensor(int64 classes)), sc 255L) |> ignore
    e, labels

let private value (loss: PixelContrastiveLoss) (e: T) (labels: T) =
    use scope = torch.NewDisposeScope()
    loss.Forward(e, labels).item<float32>() |> float

let private size (n: PositiveInt) lo hi = lo + (n.Get % (hi - lo + 1))

let tests =
    testList "pixel contrastive loss properties" [
        testPropertyWithConfig config "within-image loss is invariant to permuting the pixels" <| fun (seed: int) (n: PositiveInt) (c: PositiveInt) ->
            use scope = torch.NewDisposeScope()
            let pixels, classes = size n 2 60, size c 1 4
            let e, labels = draw seed pixels 6 classes
            let perm = torch.randperm(int64 pixels)
            use loss = lossFor ContrastiveVariant.WithinImage
            let a = value loss e labels
            let b = value loss (e.index_select(3L, perm)) (labels.index_select(2L, perm))
            Expect.floatClose Accuracy.medium b a "loss changed under a pixel permutation"

        testPropertyWithConfig config "features of ignored pixels do not change the loss" <| fun (seed: int) (n: PositiveInt) (variant: int) ->
            use scope = torch.NewDisposeScope()
            let variant = if variant % 2 = 0 then ContrastiveVariant.WithinImage else ContrastiveVariant.Batch
            let e, labels = draw seed (size n 2 60) 5 3
            let ignored = torch.eq(labels, torch.tensor(255L)).unsqueeze(1)
            let other = torch.nn.functional.normalize(torch.randn(e.shape), dim = 1L)
            let e2 = torch.where(ignored, other, e)
            use loss = lossFor variant
            Expect.floatClose Accuracy.medium (value loss e2 labels) (value loss e labels) "ignored pixels' features mattered"

        testPropertyWithConfig config "no NaN or infinity for degenerate label maps" <| fun (seed: int) (n: PositiveInt) (kind: int) (variant: int) ->
            use scope = torch.NewDisposeScope()
            let pixels = size n 1 30
            let e, _ = draw seed pixels 4 2
            let labels =
                match abs kind % 4 with
                | 0 -> torch.full([| 1L; 1L; int64 pixels |], sc 255L, dtype = torch.int64)   // all ignored
                | 1 -> torch.full([| 1L; 1L; int64 pixels |], sc 7L, dtype = torch.int64)    // a single class
                | 2 -> torch.arange(int64 pixels).reshape(1L, 1L, int64 pixels)           // every pixel its own class
                | _ -> torch.zeros([| 1L; 1L; int64 pixels |], dtype = torch.int64)
            let e = e.clone().requires_grad_(true)
            let variant = enum<ContrastiveVariant> (abs variant % 3)
            let opts = PixelContrastiveOptions(Variant = variant, ResizeTo = Nullable(), Temperature = 0.07)
            use loss = new PixelContrastiveLoss(opts)
            let l = if variant = ContrastiveVariant.CrossImage then loss.Forward(e, labels, e, labels) else loss.Forward(e, labels)
            l.backward()
            Expect.isTrue (Double.IsFinite(l.item<float32>() |> float)) "loss is not finite"
            Expect.isTrue ((nonNull e.grad).isfinite().all().item<bool>()) "gradient is not finite"

        testPropertyWithConfig config "perfectly separated clusters give a lower loss than random features" <| fun (seed: int) (n: PositiveInt) (c: PositiveInt) ->
            use scope = torch.NewDisposeScope()
            // At least two pixels per class: with one pixel per class no anchor has a positive, both losses are 0
            // and nothing is compared (FsCheck found 5 pixels of 5 classes).
            let classes = size c 2 5
            let pixels = size n (2 * classes) 60
            // 16-D features on both sides: in 2-D, random unit vectors of two classes can fall anti-parallel,
            // which separates them better than orthogonal one-hot clusters (found by FsCheck).
            let random, _ = draw seed pixels 16 classes
            // Labels that contain at least two classes, so there is something to separate.
            let labels: T = torch.arange(int64 pixels).remainder(sc (int64 classes)).reshape(1L, 1L, int64 pixels)
            // One orthogonal unit vector per class.
            let separated = torch.nn.functional.one_hot(labels.reshape(-1L), 16L).t().reshape(1L, 16L, 1L, int64 pixels).to_type(torch.float32)
            use loss = lossFor ContrastiveVariant.WithinImage
            let sep, rnd = value loss separated labels, value loss random labels
            Expect.isLessThan sep rnd "separated clusters did not lower the loss"
    ]
