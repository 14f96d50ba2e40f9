<?php

namespace App\Http\Controllers;

use App\Models\Document;
use Illuminate\Http\Request;

class DocumentController extends Controller
{
    public function redirect(Request $request)
    {
        return redirect($request->input('next'));
    }

    public function store(Request $request)
    {
        $doc = Document::create($request->all());
        return response()->json($doc, 201);
    }

    public function storeSafe(Request $request)
    {
        $doc = Document::create($request->only(['title', 'body']));
        return response()->json($doc, 201);
    }
}
